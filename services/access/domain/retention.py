"""Retention at the end of a project: when its workspace is due for deletion, and the
deletion certificate that records what went.

A project ends when it is closed, or when its approved access runs out (expired: the day
after ``access_until``). Its workspace is kept for a period after that: the setting
(``retention.workspace_days``) unless the approval, following the data-sharing agreement, set
another. The certificate names every file deleted (its path relative to the workspace, size
and SHA-256), the rows deleted per table, the rule and the process that did it, so that the
audit trail proves the deletion without holding any of the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from services.access.domain.projects import ProjectState, effective_state

__all__ = [
    "WORKSPACE_RULE",
    "DeletedFile",
    "ProcessIdentity",
    "RetentionRule",
    "certificate_detail",
    "project_ended_at",
    "workspace_rule",
]

WORKSPACE_RULE = "access.project-workspace.v1"
"""The rule's name in certificates: an ended project's workspace after its retention period."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Why and from when a project's workspace may be deleted."""

    period_days: int
    source: Literal["settings", "approval"]
    ended_at: datetime

    @property
    def due_at(self) -> datetime:
        return self.ended_at + timedelta(days=self.period_days)

    def is_due(self, now: datetime) -> bool:
        return now >= self.due_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": WORKSPACE_RULE,
            "period_days": self.period_days,
            "period_from": self.source,
            "project_ended_at": self.ended_at.isoformat(),
            "due_at": self.due_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeletedFile:
    """One file of the workspace as it was deleted (``sha256`` None for a non-regular file,
    such as a link a job left, which is removed without being followed)."""

    path: str
    bytes: int
    sha256: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """The process that deleted: its host (the pod's name under Kubernetes), pid, version."""

    host: str
    pid: int
    version: str
    command: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "command": self.command,
        }


def project_ended_at(
    state: ProjectState,
    closed_at: datetime | None,
    access_until: date | None,
    today: date,
) -> datetime | None:
    """When the project ended (closed, or expired the day after its access ended); None while
    it has not (drafts, submitted and rejected projects never held data)."""
    current = effective_state(state, access_until, today)
    if current is ProjectState.CLOSED:
        return closed_at
    if current is ProjectState.EXPIRED and access_until is not None:
        return datetime.combine(access_until + timedelta(days=1), time(), tzinfo=UTC)
    return None


def workspace_rule(
    ended_at: datetime, approval_days: int | None, default_days: int
) -> RetentionRule:
    """The approval's period when it set one (the data-sharing agreement's), else the setting."""
    if approval_days is not None:
        return RetentionRule(approval_days, "approval", ended_at)
    return RetentionRule(default_days, "settings", ended_at)


def certificate_detail(
    *,
    rule: RetentionRule,
    deleted_at: datetime,
    process: ProcessIdentity,
    files: Sequence[DeletedFile],
    rows: Mapping[str, int],
    kept_outputs: Sequence[str],
) -> dict[str, Any]:
    """The audit entry's detail: what went, when, by whom, under which rule; what was kept."""
    ordered = sorted(files, key=lambda f: f.path)
    return {
        "rule": rule.as_dict(),
        "deleted_at": deleted_at.isoformat(),
        "process": process.as_dict(),
        "files": [f.as_dict() for f in ordered],
        "file_count": len(ordered),
        "bytes": sum(f.bytes for f in ordered),
        "rows": dict(sorted(rows.items())),
        "kept": {"released_outputs": sorted(kept_outputs)},
    }
