"""Safe projects and safe people: the project lifecycle and who may do what with it.

A project moves draft → submitted → approved → active → closed, or expires when its approved
time runs out; the panel may instead reject a submitted project (final) or return it to its
owner. An approval is a record of what was approved (datasets, variables, time window,
members, the quasi-identifiers its extracts are k-anonymous on); an approver may not approve a
project they own or belong to, nor drop a quasi-identifier the project lists, and the approval
waits for every data controller's sign-off (``governance``). Access to a project's data also
needs a current accreditation: an expired accreditation loses access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "Accreditation",
    "Action",
    "Approval",
    "DomainError",
    "InvalidTransition",
    "NotAllowed",
    "ProjectState",
    "ProjectView",
    "Role",
    "approval_errors",
    "effective_state",
    "has_current_accreditation",
    "next_state",
]


class Role(StrEnum):
    """Token roles the access service recognises."""

    RESEARCHER = "researcher"
    APPROVER = "approver"
    OUTPUT_CHECKER = "output-checker"
    ADMIN = "admin"
    DATA_CONTROLLER = "data-controller"
    """A person signing for a data controller named by the token's ``fjo_source``."""


class ProjectState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    REJECTED = "rejected"


class Action(StrEnum):
    SUBMIT = "submit"
    RETURN = "return"
    APPROVE = "approve"
    ACTIVATE = "activate"
    CLOSE = "close"
    EXPIRE = "expire"
    REJECT = "reject"


class DomainError(Exception):
    """A rule of the domain was broken; the message is safe to show (no identifiers)."""


class InvalidTransition(DomainError):
    """The project is not in a state that allows this action."""


class NotAllowed(DomainError):
    """The caller may not do this to this object."""


_TRANSITIONS: dict[tuple[ProjectState, Action], ProjectState] = {
    (ProjectState.DRAFT, Action.SUBMIT): ProjectState.SUBMITTED,
    (ProjectState.SUBMITTED, Action.RETURN): ProjectState.DRAFT,
    (ProjectState.SUBMITTED, Action.APPROVE): ProjectState.APPROVED,
    (ProjectState.SUBMITTED, Action.REJECT): ProjectState.REJECTED,
    (ProjectState.APPROVED, Action.ACTIVATE): ProjectState.ACTIVE,
    (ProjectState.DRAFT, Action.CLOSE): ProjectState.CLOSED,
    (ProjectState.SUBMITTED, Action.CLOSE): ProjectState.CLOSED,
    (ProjectState.APPROVED, Action.CLOSE): ProjectState.CLOSED,
    (ProjectState.ACTIVE, Action.CLOSE): ProjectState.CLOSED,
    (ProjectState.APPROVED, Action.EXPIRE): ProjectState.EXPIRED,
    (ProjectState.ACTIVE, Action.EXPIRE): ProjectState.EXPIRED,
}


def next_state(current: ProjectState, action: Action) -> ProjectState:
    """The state after ``action``, or ``InvalidTransition``."""
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidTransition(
            f"cannot {action.value} a project that is {current.value}"
        ) from None


def effective_state(state: ProjectState, access_until: date | None, today: date) -> ProjectState:
    """Approved and active projects whose approved period has ended are expired."""
    if (
        state in (ProjectState.APPROVED, ProjectState.ACTIVE)
        and access_until is not None
        and today > access_until
    ):
        return ProjectState.EXPIRED
    return state


@dataclass(frozen=True, slots=True)
class Accreditation:
    """A researcher's accreditation (safe people): valid up to and including ``valid_until``."""

    subject: str
    valid_until: date | None
    revoked: bool = False


def has_current_accreditation(accreditation: Accreditation | None, today: date) -> bool:
    return (
        accreditation is not None
        and not accreditation.revoked
        and accreditation.valid_until is not None
        and accreditation.valid_until >= today
    )


@dataclass(frozen=True, slots=True)
class Approval:
    """What the panel approved: the data view a project's extracts are built from."""

    datasets: tuple[str, ...]
    variables: tuple[str, ...]
    window_start: date
    window_end: date
    members: tuple[str, ...]
    access_until: date
    approver: str
    quasi_identifiers: tuple[str, ...] = ()
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProjectView:
    """The facts about a project the rules need."""

    owner: str
    members: frozenset[str]
    state: ProjectState
    quasi_identifiers: tuple[str, ...] = ()
    """What the project shows the approver: the catalogue's quasi-identifiers and its own."""
    extra: dict[str, str] = field(default_factory=dict)


def approval_errors(
    project: ProjectView,
    approval: Approval,
    *,
    catalogue: Mapping[str, Iterable[str]],
    today: date,
) -> list[str]:
    """Why this approval may not be recorded (empty when it may); messages carry no data."""
    errors: list[str] = []
    if project.state is not ProjectState.SUBMITTED:
        errors.append(f"only a submitted project can be approved (it is {project.state.value})")
    if approval.approver == project.owner or approval.approver in project.members:
        errors.append("an approver cannot approve a project they own or belong to")
    if approval.approver in approval.members:
        errors.append("an approver cannot approve themselves as a member")
    if not approval.datasets:
        errors.append("an approval must name at least one dataset")
    unknown = [d for d in approval.datasets if d not in catalogue]
    if unknown:
        errors.append(f"unknown datasets: {sorted(unknown)}")
    allowed_vars = {v for d in approval.datasets if d in catalogue for v in catalogue[d]}
    bad_vars = [v for v in approval.variables if v not in allowed_vars]
    if bad_vars:
        errors.append(f"variables not in the approved datasets: {sorted(bad_vars)}")
    if approval.window_start > approval.window_end:
        errors.append("the time window starts after it ends")
    if approval.access_until < today:
        errors.append("access must end today or later")
    if project.owner not in approval.members:
        errors.append("the project owner must be an approved member")
    not_proposed = set(approval.members) - project.members - {project.owner}
    if not_proposed:
        errors.append("approved members must be members the project proposed")
    dropped = [q for q in project.quasi_identifiers if q not in approval.quasi_identifiers]
    if dropped:
        errors.append(
            f"the approval must pin all the project's quasi-identifiers; it drops {dropped}"
        )
    return errors
