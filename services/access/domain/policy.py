"""Authorisation per object: who may see or do what to a project and what hangs off it.

Pure functions over facts the caller and the project supply. Routes turn "may not see" into
404 (the object's existence is not revealed), "may see but not do" into 403 and "the
project's state forbids it" into 409 (``Refusal``).

One rule decides whether a project's data moves at all (``data_moves``): extracts and outputs
are requested, listed, read, reviewed, released and downloaded only while the project is
active. Every data rule below applies it after the caller's own rights, so closing a project
stops everything at once, whoever asks and through whichever route.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.access.domain.projects import ProjectState, Role

__all__ = [
    "CallerFacts",
    "ProjectFacts",
    "Refusal",
    "can_manage_draft",
    "can_read_project",
    "can_review_project",
    "can_sign_for",
    "can_steer_project",
    "data_moves",
    "data_use_refusal",
    "output_read_refusal",
    "output_review_refusal",
]


class Refusal(StrEnum):
    """Why a data rule says no; each has its own answer (docs/access.md)."""

    HIDDEN = "hidden"  # 404: the caller may not even know the object exists
    FORBIDDEN = "forbidden"  # 403: they may see it, not do this
    STATE = "state"  # 409: they could, but the project's state forbids it now


@dataclass(frozen=True, slots=True)
class CallerFacts:
    subject: str
    roles: frozenset[str]
    accredited: bool
    controller: str | None = None
    """The data controller a ``data-controller`` caller signs for (the token's fjo_source)."""

    def is_(self, role: Role) -> bool:
        return role.value in self.roles

    @property
    def active_researcher(self) -> bool:
        return self.is_(Role.RESEARCHER) and self.accredited


@dataclass(frozen=True, slots=True)
class ProjectFacts:
    owner: str
    members: frozenset[str]
    approved_members: frozenset[str]
    state: ProjectState
    controllers: frozenset[str] = frozenset()
    """The data controllers whose data the project asks for (``governance``)."""

    def involves(self, subject: str) -> bool:
        return subject == self.owner or subject in self.members or subject in self.approved_members


def can_read_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    if caller.active_researcher and project.involves(caller.subject):
        return True
    if caller.is_(Role.APPROVER) and project.state is not ProjectState.DRAFT:
        return True
    if can_sign_for(caller, project) and project.state is not ProjectState.DRAFT:
        return True
    return caller.is_(Role.ADMIN)


def can_sign_for(caller: CallerFacts, project: ProjectFacts) -> bool:
    """A data controller's signatory, for a project that uses that controller's data (and
    that they are not on themselves)."""
    return (
        caller.is_(Role.DATA_CONTROLLER)
        and caller.controller is not None
        and caller.controller in project.controllers
        and not project.involves(caller.subject)
    )


def can_manage_draft(caller: CallerFacts, project: ProjectFacts) -> bool:
    return caller.active_researcher and caller.subject == project.owner


def can_review_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    return caller.is_(Role.APPROVER) and not project.involves(caller.subject)


def can_steer_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    """Activate or close: the owner, or an administrator."""
    return (caller.active_researcher and caller.subject == project.owner) or caller.is_(Role.ADMIN)


def data_moves(project: ProjectFacts) -> bool:
    """Closed means closed: a project's extracts and outputs move only while it is active
    (not before activation, not once closed or expired)."""
    return project.state is ProjectState.ACTIVE


def _unless_stopped(project: ProjectFacts) -> Refusal | None:
    return None if data_moves(project) else Refusal.STATE


def _approved_member(caller: CallerFacts, project: ProjectFacts) -> bool:
    return caller.active_researcher and caller.subject in project.approved_members


def data_use_refusal(caller: CallerFacts, project: ProjectFacts) -> Refusal | None:
    """Extracts, and a member's outputs (submit, list, read, download the released table):
    an accredited, approved member of an active project. None when allowed."""
    if not _approved_member(caller, project):
        return Refusal.FORBIDDEN if can_read_project(caller, project) else Refusal.HIDDEN
    return _unless_stopped(project)


def output_read_refusal(caller: CallerFacts, project: ProjectFacts) -> Refusal | None:
    """One output with its checks: the project's approved members and independent checkers."""
    if not (
        _approved_member(caller, project)
        or (caller.is_(Role.OUTPUT_CHECKER) and not project.involves(caller.subject))
    ):
        return Refusal.HIDDEN
    return _unless_stopped(project)


def output_review_refusal(
    caller: CallerFacts, project: ProjectFacts, author: str
) -> Refusal | None:
    """Review (and so release) an output: independent checkers only, neither its author nor
    anyone on the project."""
    refusal = output_read_refusal(caller, project)
    if refusal is Refusal.HIDDEN:
        return refusal
    if not (
        caller.is_(Role.OUTPUT_CHECKER)
        and caller.subject != author
        and not project.involves(caller.subject)
    ):
        return Refusal.FORBIDDEN
    return refusal
