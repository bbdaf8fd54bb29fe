"""When an ended project's workspace is due for deletion (domain/retention.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.access.domain.projects import ProjectState
from services.access.domain.retention import project_ended_at, workspace_rule

CLOSED_AT = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
TODAY = date(2026, 6, 1)


def test_a_closed_project_ended_when_it_was_closed() -> None:
    ended = project_ended_at(ProjectState.CLOSED, CLOSED_AT, date(2027, 1, 1), TODAY)
    assert ended == CLOSED_AT


def test_a_project_whose_access_ran_out_ended_the_day_after_its_last_day() -> None:
    ended = project_ended_at(ProjectState.ACTIVE, None, date(2026, 5, 1), TODAY)
    assert ended == datetime(2026, 5, 2, tzinfo=UTC)


def test_projects_that_are_running_or_never_held_data_have_not_ended() -> None:
    assert project_ended_at(ProjectState.ACTIVE, None, date(2026, 6, 1), TODAY) is None
    for state in (ProjectState.DRAFT, ProjectState.SUBMITTED, ProjectState.REJECTED):
        assert project_ended_at(state, None, None, TODAY) is None


def test_the_approvals_period_overrides_the_setting_and_the_rule_is_due_at_its_end() -> None:
    own = workspace_rule(CLOSED_AT, 30, 90)
    assert (own.period_days, own.source) == (30, "approval")
    assert own.due_at == CLOSED_AT + timedelta(days=30)
    assert not own.is_due(CLOSED_AT + timedelta(days=30) - timedelta(seconds=1))
    assert own.is_due(CLOSED_AT + timedelta(days=30))
    default = workspace_rule(CLOSED_AT, None, 90)
    assert (default.period_days, default.source) == (90, "settings")
    assert workspace_rule(CLOSED_AT, 0, 90).is_due(CLOSED_AT)  # zero: at once
