"""The project lifecycle and approval rules."""

from __future__ import annotations

from datetime import date

import pytest

from services.access.domain.projects import (
    Accreditation,
    Action,
    Approval,
    InvalidTransition,
    ProjectState,
    ProjectView,
    approval_errors,
    effective_state,
    has_current_accreditation,
    next_state,
)

TODAY = date(2026, 6, 1)
CATALOGUE = {"case": ["LAW_TYPE", "LA_CD_E"], "child": ["WOB", "GNDR_CD"]}


def approval(**kw: object) -> Approval:
    base: dict[str, object] = {
        "datasets": ("case", "child"),
        "variables": ("LAW_TYPE", "WOB"),
        "window_start": date(2015, 1, 1),
        "window_end": date(2019, 12, 31),
        "members": ("alice", "bob"),
        "access_until": date(2027, 1, 1),
        "approver": "carol",
    }
    base.update(kw)
    return Approval(**base)  # type: ignore[arg-type]


SUBMITTED = ProjectView(
    owner="alice", members=frozenset({"alice", "bob"}), state=ProjectState.SUBMITTED
)


def test_the_happy_path_runs_draft_to_closed() -> None:
    state = ProjectState.DRAFT
    for action, expected in [
        (Action.SUBMIT, ProjectState.SUBMITTED),
        (Action.APPROVE, ProjectState.APPROVED),
        (Action.ACTIVATE, ProjectState.ACTIVE),
        (Action.CLOSE, ProjectState.CLOSED),
    ]:
        state = next_state(state, action)
        assert state is expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (ProjectState.DRAFT, Action.APPROVE),
        (ProjectState.DRAFT, Action.ACTIVATE),
        (ProjectState.SUBMITTED, Action.ACTIVATE),
        (ProjectState.CLOSED, Action.SUBMIT),
        (ProjectState.EXPIRED, Action.ACTIVATE),
        (ProjectState.CLOSED, Action.CLOSE),
    ],
)
def test_steps_out_of_order_are_refused(state: ProjectState, action: Action) -> None:
    with pytest.raises(InvalidTransition):
        next_state(state, action)


def test_an_active_project_past_its_access_date_is_expired() -> None:
    assert effective_state(ProjectState.ACTIVE, date(2026, 5, 31), TODAY) is ProjectState.EXPIRED
    assert effective_state(ProjectState.ACTIVE, TODAY, TODAY) is ProjectState.ACTIVE
    assert effective_state(ProjectState.CLOSED, date(2000, 1, 1), TODAY) is ProjectState.CLOSED


def test_an_accreditation_counts_up_to_and_including_its_last_day_unless_revoked() -> None:
    assert has_current_accreditation(Accreditation("a", TODAY), TODAY)
    assert not has_current_accreditation(Accreditation("a", date(2026, 5, 31)), TODAY)
    assert not has_current_accreditation(Accreditation("a", TODAY, revoked=True), TODAY)
    assert not has_current_accreditation(None, TODAY)


def test_a_valid_approval_has_no_errors() -> None:
    assert approval_errors(SUBMITTED, approval(), catalogue=CATALOGUE, today=TODAY) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"approver": "alice"}, "own or belong"),
        ({"approver": "bob"}, "own or belong"),
        ({"variables": ("LAW_TYPE", "NHS_NUMBER")}, "not in the approved datasets"),
        ({"datasets": ("case", "spine")}, "unknown datasets"),
        ({"window_start": date(2020, 1, 1)}, "starts after it ends"),
        ({"members": ("bob",)}, "owner must be"),
        ({"members": ("alice", "mallory")}, "members the project proposed"),
        ({"access_until": date(2020, 1, 1)}, "access must end"),
    ],
)
def test_approval_rules_are_enforced(changes: dict[str, object], message: str) -> None:
    errors = approval_errors(SUBMITTED, approval(**changes), catalogue=CATALOGUE, today=TODAY)
    assert any(message in e for e in errors), errors


def test_only_a_submitted_project_can_be_approved() -> None:
    draft = ProjectView(owner="alice", members=frozenset({"alice"}), state=ProjectState.DRAFT)
    errors = approval_errors(draft, approval(members=("alice",)), catalogue=CATALOGUE, today=TODAY)
    assert any("only a submitted project" in e for e in errors)


def test_an_approval_that_drops_a_quasi_identifier_the_project_shows_is_refused() -> None:
    shown = ProjectView(
        owner="alice",
        members=frozenset({"alice", "bob"}),
        state=ProjectState.SUBMITTED,
        quasi_identifiers=("GNDR_CD", "WOB", "DISABILITY"),
    )
    dropped = approval(quasi_identifiers=("GNDR_CD", "WOB"))
    errors = approval_errors(shown, dropped, catalogue=CATALOGUE, today=TODAY)
    assert errors == [
        "the approval must pin all the project's quasi-identifiers; it drops ['DISABILITY']"
    ]
    kept = approval(quasi_identifiers=("GNDR_CD", "WOB", "DISABILITY", "ETHNICITY"))
    assert approval_errors(shown, kept, catalogue=CATALOGUE, today=TODAY) == []
