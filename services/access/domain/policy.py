"""Authorisation per object: who may see or do what to a project and what hangs off it.

Pure functions over facts the caller and the project supply. Routes turn "may not see" into
404 (the object's existence is not revealed) and "may see but not do" into 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.access.domain.projects import ProjectState, Role

__all__ = [
    "CallerFacts",
    "ProjectFacts",
    "can_manage_draft",
    "can_read_output",
    "can_read_project",
    "can_review_output",
    "can_review_project",
    "can_steer_project",
    "can_use_data",
]


@dataclass(frozen=True, slots=True)
class CallerFacts:
    subject: str
    roles: frozenset[str]
    accredited: bool

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

    def involves(self, subject: str) -> bool:
        return subject == self.owner or subject in self.members or subject in self.approved_members


def can_read_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    if caller.active_researcher and project.involves(caller.subject):
        return True
    if caller.is_(Role.APPROVER) and project.state is not ProjectState.DRAFT:
        return True
    return caller.is_(Role.ADMIN)


def can_manage_draft(caller: CallerFacts, project: ProjectFacts) -> bool:
    return caller.active_researcher and caller.subject == project.owner


def can_review_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    return caller.is_(Role.APPROVER) and not project.involves(caller.subject)


def can_steer_project(caller: CallerFacts, project: ProjectFacts) -> bool:
    """Activate or close: the owner, or an administrator."""
    return (caller.active_researcher and caller.subject == project.owner) or caller.is_(Role.ADMIN)


def can_use_data(caller: CallerFacts, project: ProjectFacts) -> bool:
    """Extracts and outputs: an accredited, approved member of an active project."""
    return (
        caller.active_researcher
        and caller.subject in project.approved_members
        and project.state is ProjectState.ACTIVE
    )


def can_read_output(caller: CallerFacts, project: ProjectFacts) -> bool:
    if caller.active_researcher and caller.subject in project.approved_members:
        return True
    return caller.is_(Role.OUTPUT_CHECKER) and not project.involves(caller.subject)


def can_review_output(caller: CallerFacts, project: ProjectFacts, author: str) -> bool:
    """Independent checkers only: not the author, not anyone on the project."""
    return (
        caller.is_(Role.OUTPUT_CHECKER)
        and caller.subject != author
        and not project.involves(caller.subject)
    )
