"""The retention job: deletes ended projects' workspaces once their period has passed, each
with a signed deletion certificate in the audit trail (``fjo access retention run``, a
Kubernetes CronJob in deploy/manifests).

Idempotent: a project's ``workspace_deleted_at`` is set in the same transaction as its
certificate, so a second run finds nothing to do and writes nothing. Order of work per
project: hash what is there, then in one transaction (the project row locked, so two runs at
once certify once) delete the rows, mark the project and append the certificate, and only
after that commit remove the files. A run that dies between the commit and the removal
leaves certified files behind; the next run removes them without a second certificate (a
closed project's workspace takes no new files: ``policy.data_moves``).

Released outputs are kept, rows and files: they have left the TRE already.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.access.bootstrap import AccessContext
from services.access.domain.airlock import OutputState
from services.access.domain.projects import ProjectState
from services.access.domain.retention import (
    DeletedFile,
    ProcessIdentity,
    RetentionRule,
    certificate_detail,
    project_ended_at,
    workspace_rule,
)
from services.access.storage.models import (
    AirlockOutputRow,
    AirlockReviewRow,
    ExtractRow,
    JobRow,
    ProjectApprovalRow,
    ProjectRow,
    WorkspaceQueryRow,
)
from services.access.workspace.files import WorkspacePaths, sha256_of
from services.runtime.db import transaction

__all__ = [
    "CERTIFICATE_ACTION",
    "RetentionReport",
    "WorkspaceStorageMissing",
    "current_process",
    "run_retention",
]

CERTIFICATE_ACTION = "retention.workspace.deleted"
"""The audit action of a deletion certificate."""

_ENDED_STATES = (
    ProjectState.CLOSED.value,
    ProjectState.EXPIRED.value,
    ProjectState.APPROVED.value,  # expired when access_until has passed
    ProjectState.ACTIVE.value,
)


class WorkspaceStorageMissing(RuntimeError):
    """The workspaces' folder is not there: certifying now would name no files while the
    API's copies live on (a job pod without the API's workspace volume)."""


@dataclass
class RetentionReport:
    """What one run did: projects certified, waiting (with their due dates), finished."""

    deleted: dict[str, int] = field(default_factory=dict)
    """Project id → files deleted, for the projects certified in this run."""
    waiting: dict[str, datetime] = field(default_factory=dict)
    """Project id → when its workspace becomes due."""
    finished: list[str] = field(default_factory=list)
    """Projects certified before whose files a crashed run had left; removed now."""


def current_process(command: str = "fjo access retention run") -> ProcessIdentity:
    """This process as a certificate names it (under Kubernetes the host name is the pod's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("fjo")
    except PackageNotFoundError:  # a source tree that is not installed
        release = "0.0.0+unknown"
    return ProcessIdentity(socket.gethostname(), os.getpid(), release, command)


def run_retention(
    ctx: AccessContext,
    *,
    now: datetime | None = None,
    process: ProcessIdentity | None = None,
    on_project: Callable[[str, str], None] | None = None,
) -> RetentionReport:
    """Delete every ended project's workspace whose retention period has passed."""
    now = datetime.now(UTC) if now is None else now
    process = current_process() if process is None else process
    report = RetentionReport()
    for project_id, rule, deleted_before in _candidates(ctx, now):
        paths = WorkspacePaths(ctx.settings.extracts.directory, project_id)
        if deleted_before:
            if _remove(paths.base, _kept_folders(ctx, paths)):
                report.finished.append(project_id)
            continue
        assert rule is not None
        if not rule.is_due(now):
            report.waiting[project_id] = rule.due_at
            continue
        if not paths.root.is_dir():
            raise WorkspaceStorageMissing(
                f"the workspaces' folder {paths.root} is missing: mount the API's workspace "
                "storage (extracts.directory) before deleting and certifying"
            )
        files = _certify(ctx, paths, rule, now, process)
        if files is None:  # another run certified it meanwhile
            continue
        _remove(paths.base, _kept_folders(ctx, paths))
        report.deleted[project_id] = files
        if on_project is not None:
            on_project(project_id, f"{files} files deleted")
    return report


def _candidates(ctx: AccessContext, now: datetime) -> list[tuple[str, RetentionRule | None, bool]]:
    """Ended projects: (id, rule, already certified). A certified one is listed only while
    files of it remain (a run that died after certifying)."""
    out: list[tuple[str, RetentionRule | None, bool]] = []
    default_days = ctx.settings.retention.workspace_days
    with ctx.sessions() as s:
        rows = s.execute(
            select(ProjectRow, ProjectApprovalRow.retention_days)
            .outerjoin(ProjectApprovalRow, ProjectApprovalRow.project_id == ProjectRow.id)
            .where(ProjectRow.state.in_(_ENDED_STATES))
            .order_by(ProjectRow.id)
        ).all()
        for project, approval_days in rows:
            if project.workspace_deleted_at is not None:
                paths = WorkspacePaths(ctx.settings.extracts.directory, project.id)
                if paths.base.exists():
                    out.append((project.id, None, True))
                continue
            ended = project_ended_at(
                ProjectState(project.state), project.closed_at, project.access_until, now.date()
            )
            if ended is not None:
                out.append((project.id, workspace_rule(ended, approval_days, default_days), False))
    return out


def _kept_folders(ctx: AccessContext, paths: WorkspacePaths) -> set[Path]:
    """The folders of released outputs (the revision that was released)."""
    with ctx.sessions() as s:
        released = s.execute(
            select(AirlockOutputRow.id, AirlockOutputRow.revision).where(
                AirlockOutputRow.project_id == paths.project_id,
                AirlockOutputRow.state == OutputState.RELEASED.value,
            )
        ).all()
    return {paths.output(output_id, revision) for output_id, revision in released}


def _workspace_files(base: Path, kept: set[Path]) -> list[DeletedFile]:
    """Every file under ``base`` outside ``kept``, never following a link."""
    files: list[DeletedFile] = []
    if not base.exists():
        return files
    for here, dirs, names in os.walk(base, followlinks=False):
        folder = Path(here)
        dirs[:] = [d for d in dirs if folder / d not in kept]
        entries = names + [d for d in dirs if (folder / d).is_symlink()]
        for name in entries:
            path = folder / name
            info = path.lstat()
            regular = stat.S_ISREG(info.st_mode)
            files.append(
                DeletedFile(
                    path=path.relative_to(base).as_posix(),
                    bytes=info.st_size if regular else 0,
                    sha256=sha256_of(path) if regular else None,
                )
            )
    return files


def _certify(
    ctx: AccessContext,
    paths: WorkspacePaths,
    rule: RetentionRule,
    now: datetime,
    process: ProcessIdentity,
) -> int | None:
    """Delete the project's rows, mark it and append its certificate in one transaction;
    the number of files certified, or None when another run did it first."""
    kept = _kept_folders(ctx, paths)
    files = _workspace_files(paths.base, kept)
    pid = paths.project_id
    with transaction(ctx.sessions) as s:
        project = s.execute(
            select(ProjectRow).where(ProjectRow.id == pid).with_for_update()
        ).scalar_one()
        if project.workspace_deleted_at is not None:
            return None
        kept_outputs = list(
            s.execute(
                select(AirlockOutputRow.id).where(
                    AirlockOutputRow.project_id == pid,
                    AirlockOutputRow.state == OutputState.RELEASED.value,
                )
            ).scalars()
        )
        rows = _delete_rows(s, pid)
        project.workspace_deleted_at = now
        ctx.audit.append(
            s,
            actor=f"system:{process.command}",
            action=CERTIFICATE_ACTION,
            object_type="project",
            object_id=pid,
            project_id=pid,
            detail=certificate_detail(
                rule=rule,
                deleted_at=now,
                process=process,
                files=files,
                rows=rows,
                kept_outputs=kept_outputs,
            ),
        )
    return len(files)


def _delete_rows(s: Session, project_id: str) -> dict[str, int]:
    """Delete what the project derived, except released outputs; rows deleted per table."""
    airlock = select(AirlockOutputRow.id).where(
        AirlockOutputRow.project_id == project_id,
        AirlockOutputRow.state != OutputState.RELEASED.value,
    )
    # Children first, each by its own statement: SQLite enforces no ON DELETE CASCADE unless
    # asked to, and the count of each table belongs in the certificate.
    statements = [
        (AirlockReviewRow, delete(AirlockReviewRow).where(AirlockReviewRow.output_id.in_(airlock))),
        (AirlockOutputRow, delete(AirlockOutputRow).where(AirlockOutputRow.id.in_(airlock))),
        (JobRow, delete(JobRow).where(JobRow.project_id == project_id)),
        (
            WorkspaceQueryRow,
            delete(WorkspaceQueryRow).where(WorkspaceQueryRow.project_id == project_id),
        ),
        (ExtractRow, delete(ExtractRow).where(ExtractRow.project_id == project_id)),
    ]
    counts: dict[str, int] = {}
    for model, statement in statements:
        counts[model.__tablename__] = int(s.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
    return counts


def _remove(base: Path, kept: set[Path]) -> bool:
    """Remove everything under ``base`` but the ``kept`` folders (and the folders leading to
    them), never following a link; whether anything was there to remove."""
    if not base.exists():
        return False
    removed = False
    for here, dirs, names in os.walk(base, topdown=False, followlinks=False):
        folder = Path(here)
        if folder in kept or any(k in folder.parents for k in kept):
            continue
        for name in names:
            (folder / name).unlink()
            removed = True
        for d in dirs:
            path = folder / d
            if path.is_symlink():
                path.unlink()
                removed = True
            elif path.exists() and not any(path.iterdir()):
                path.rmdir()
                removed = True
    if not any(base.iterdir()):
        base.rmdir()
        removed = True
    return removed
