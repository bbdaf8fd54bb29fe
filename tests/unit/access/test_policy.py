"""The authorisation rules per object, and the one rule that stops a project's data moving."""

from __future__ import annotations

import pytest

from services.access.domain.policy import (
    CallerFacts,
    ProjectFacts,
    Refusal,
    data_moves,
    data_use_refusal,
    output_read_refusal,
    output_review_refusal,
)
from services.access.domain.projects import ProjectState

MEMBER = CallerFacts("bob", frozenset({"researcher"}), accredited=True)
STRANGER = CallerFacts("mallory", frozenset({"researcher"}), accredited=True)
APPROVER = CallerFacts("carol", frozenset({"approver"}), accredited=False)
CHECKER = CallerFacts("dave", frozenset({"output-checker"}), accredited=False)


def project(state: ProjectState) -> ProjectFacts:
    return ProjectFacts(
        owner="alice",
        members=frozenset({"alice", "bob"}),
        approved_members=frozenset({"alice", "bob"}),
        state=state,
    )


def test_data_moves_only_while_a_project_is_active() -> None:
    assert [s for s in ProjectState if data_moves(project(s))] == [ProjectState.ACTIVE]


@pytest.mark.parametrize(
    "state",
    [ProjectState.APPROVED, ProjectState.CLOSED, ProjectState.EXPIRED],
)
def test_a_stopped_project_refuses_every_data_rule_for_those_it_would_allow(
    state: ProjectState,
) -> None:
    p = project(state)
    assert data_use_refusal(MEMBER, p) is Refusal.STATE
    assert output_read_refusal(MEMBER, p) is Refusal.STATE
    assert output_read_refusal(CHECKER, p) is Refusal.STATE
    assert output_review_refusal(CHECKER, p, author="bob") is Refusal.STATE


def test_the_callers_own_rights_are_decided_before_the_state() -> None:
    closed = project(ProjectState.CLOSED)
    assert data_use_refusal(STRANGER, closed) is Refusal.HIDDEN
    assert data_use_refusal(APPROVER, closed) is Refusal.FORBIDDEN
    assert output_read_refusal(STRANGER, closed) is Refusal.HIDDEN
    assert output_review_refusal(MEMBER, closed, author="bob") is Refusal.FORBIDDEN


def test_an_active_project_allows_its_members_and_independent_checkers() -> None:
    active = project(ProjectState.ACTIVE)
    assert data_use_refusal(MEMBER, active) is None
    assert output_read_refusal(CHECKER, active) is None
    assert output_review_refusal(CHECKER, active, author="bob") is None
    author_checker = CallerFacts("dave", frozenset({"output-checker"}), accredited=False)
    assert output_review_refusal(author_checker, active, author="dave") is Refusal.FORBIDDEN
