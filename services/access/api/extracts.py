"""Safe data: extract requests (rate-limited), the background build, status and downloads.

The build runs as a Starlette background task (in the server's thread pool, after the 202
response) behind a per-process semaphore so that one extract at a time uses the CPU. An
extract left ``queued`` or ``running`` by a process that died is marked ``failed`` at the
next start-up (``recover_interrupted``) and can simply be requested again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, status
from fastapi.responses import FileResponse
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    Refused,
    authorised_data,
    conflict,
    forbidden,
    not_found,
    problems,
    unit,
)
from services.access.api.schemas import ExtractOut, ExtractPage
from services.access.bootstrap import AccessContext
from services.access.domain.catalogue import pinned_quasi_identifiers, quasi_identifier_problem
from services.access.domain.egress import ROW_LEVEL_FORMATS, Egress, download_refusal
from services.access.domain.generalisation import DatePrecision
from services.access.domain.kanonymity import KAnonymityMode
from services.access.domain.objections import excluding_kinds
from services.access.extracts import ExtractSpec, build_extract
from services.access.storage.models import (
    ExtractHoldingRow,
    ExtractRow,
    ProjectApprovalRow,
    ProjectRow,
)
from services.access.workspace.files import WorkspacePaths
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.db import transaction
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["extracts_router", "recover_interrupted", "run_extract_job"]

_log = logging.getLogger("fjo.access.extracts")


def _out(row: ExtractRow) -> ExtractOut:
    return ExtractOut(
        id=row.id,
        project_id=row.project_id,
        requested_by=row.requested_by,
        state=row.state,
        requested_at=row.requested_at,
        finished_at=row.finished_at,
        rows=row.rows,
        disclosure=row.report or {},
        files=list((row.manifest or {}).get("files", [])),
        error=row.error,
        rebuild_needed=row.rebuild_reason is not None,
        rebuild_reason=row.rebuild_reason,
    )


def extract_dir(ctx: AccessContext, project_id: str, extract_id: str) -> Path:
    """Extracts are built into their project's workspace (``workspace/files.py``)."""
    return WorkspacePaths(ctx.settings.extracts.directory, project_id).extract(extract_id)


def _pinned(approval: ProjectApprovalRow, project: ProjectRow) -> tuple[str, ...]:
    """The approval's quasi-identifiers; an approval from before they were pinned gets the
    project's known ones. The catalogue's are always among them."""
    if approval.quasi_identifiers:
        return pinned_quasi_identifiers(approval.quasi_identifiers)
    known = [q for q in project.quasi_identifiers if quasi_identifier_problem(q) is None]
    return pinned_quasi_identifiers(known)


def run_extract_job(ctx: AccessContext, extract_id: str) -> None:
    """Build one queued extract; every outcome is recorded on the row and in the audit."""
    with ctx.extract_slots:
        with transaction(ctx.sessions) as s:
            row = s.get(ExtractRow, extract_id)
            if row is None or row.state != "queued":
                return
            project = s.get(ProjectRow, row.project_id)
            approval = s.get(ProjectApprovalRow, row.project_id)
            assert project is not None
            if approval is None:
                row.state = "failed"
                row.error = "project has no approval"
                return
            row.state = "running"
            row.started_at = datetime.now(UTC)
            spec = ExtractSpec(
                extract_id=row.id,
                project_id=project.id,
                datasets=tuple(approval.datasets),
                variables=tuple(approval.variables),
                window_start=approval.window_start,
                window_end=approval.window_end,
                k=project.k,
                quasi_identifiers=_pinned(approval, project),
                mode=KAnonymityMode(project.k_mode),
                max_suppressed_fraction=ctx.settings.disclosure.max_suppressed_fraction,
                pseudonym_key_version=project.pseudonym_key_version,
                date_precision=DatePrecision(approval.date_precision or DatePrecision.MONTH),
                join_k=ctx.settings.disclosure.join_k,
                excluded_kinds=excluding_kinds((project.requested or {}).get("legal_basis")),
            )
            requester = row.requested_by
        out_dir = extract_dir(ctx, spec.project_id, spec.extract_id)
        try:
            result = build_extract(
                ctx.engine,
                spec,
                master_secret=ctx.pseudonym_master,
                out_dir=out_dir,
                batch_rows=ctx.settings.extracts.batch_rows,
            )
            error = None
        except Exception as exc:
            _log.error("extract build failed", extra={"error_type": type(exc).__name__})
            result = None
            error = f"build failed ({type(exc).__name__})"
        with transaction(ctx.sessions) as s:
            row = s.get(ExtractRow, extract_id)
            assert row is not None
            row.finished_at = datetime.now(UTC)
            detail: dict[str, Any]
            if result is None:
                row.state = "failed"
                row.error = error
                outcome, detail = "failed", {"error": error}
            elif result.refused:
                row.state = "refused"
                row.report = result.disclosure
                row.error = result.reason
                outcome, detail = "refused", {"disclosure": result.disclosure}
            else:
                row.state = "succeeded"
                row.rows = result.rows
                row.report = result.disclosure
                row.manifest = result.manifest
                row.directory = str(out_dir)
                if result.holdings:
                    s.execute(
                        insert(ExtractHoldingRow),
                        [
                            {"extract_id": extract_id, "record_token": tok, "alf": alf}
                            for tok, alf in sorted(result.holdings.items())
                        ],
                    )
                outcome = "ok"
                detail = {
                    "rows": result.rows,
                    "files": [
                        {"name": f["name"], "sha256": f["sha256"]} for f in result.manifest["files"]
                    ],
                    "disclosure": result.disclosure,
                }
            ctx.audit.append(
                s,
                actor=requester,
                action="extract.build",
                outcome=outcome,
                object_type="extract",
                object_id=extract_id,
                project_id=spec.project_id,
                detail=detail,
            )


def recover_interrupted(ctx: AccessContext) -> int:
    """Mark extracts a dead process left unfinished as failed; returns how many."""
    with transaction(ctx.sessions) as s:
        rows = list(
            s.execute(
                select(ExtractRow).where(ExtractRow.state.in_(("queued", "running")))
            ).scalars()
        )
        for row in rows:
            row.state = "failed"
            row.error = "interrupted by a restart; request it again"
            row.finished_at = datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=None,
                action="extract.build",
                outcome="failed",
                object_type="extract",
                object_id=row.id,
                project_id=row.project_id,
                detail={"error": "interrupted"},
            )
        return len(rows)


def extracts_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["extracts"], route_class=AuthenticatedRoute)

    def guard(s: Any, principal: Principal, project_id: str, *, lock: bool = False) -> ProjectRow:
        project, _ = authorised_data(
            s,
            principal,
            project_id,
            "an accredited approved member of an active project is required",
            lock=lock,
        )
        return project

    def load_extract(s: Session, project_id: str, extract_id: str) -> ExtractRow:
        row = s.get(ExtractRow, extract_id)
        if row is None or row.project_id != project_id:
            raise not_found("extract", extract_id, project_id)
        return row

    @router.post(
        "/projects/{project_id}/extracts",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Request an extract of the approved data (rate-limited; built in the background).",
        responses=problems(403, 404, 409, 429),
    )
    def request_extract(
        project_id: str, background: BackgroundTasks, principal: Principal = Depends(auth)
    ) -> ExtractOut:
        limits = ctx.settings.extracts
        with unit(ctx, principal, "extract.request") as s:
            guard(s, principal, project_id, lock=True)  # the lock serialises the rate check
            since = datetime.now(UTC) - timedelta(seconds=limits.rate_window_s)
            recent = s.execute(
                select(func.count())
                .select_from(ExtractRow)
                .where(
                    ExtractRow.project_id == project_id,
                    ExtractRow.requested_by == principal.subject,
                    ExtractRow.requested_at >= since,
                )
            ).scalar_one()
            if recent >= limits.rate_limit:
                raise Refused(
                    429,
                    "Too many extract requests",
                    kind="too-many-extracts",
                    detail=f"at most {limits.rate_limit} per {limits.rate_window_s} s",
                    outcome="refused",
                    object_type="project",
                    object_id=project_id,
                    project_id=project_id,
                    headers={"Retry-After": str(limits.rate_window_s)},
                )
            row = ExtractRow(
                id=str(uuid.uuid4()),
                project_id=project_id,
                requested_by=principal.subject,
                state="queued",
                report={},
                manifest={},
            )
            s.add(row)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="extract.request",
                object_type="extract",
                object_id=row.id,
                project_id=project_id,
            )
            out = _out(row)
        background.add_task(run_extract_job, ctx, out.id)
        return out

    @router.get(
        "/projects/{project_id}/extracts",
        summary="The project's extracts, oldest request first, a page at a time.",
        responses=problems(403, 404, 409, 422),
    )
    def list_extracts(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> ExtractPage:
        with unit(ctx, principal, "extract.list") as s:
            guard(s, principal, project_id)
            items, after = keyset_page(
                s.scalars,
                select(ExtractRow).where(ExtractRow.project_id == project_id),
                (ExtractRow.requested_at, ExtractRow.id),
                limit=limit,
                cursor=cursor,
                item=_out,
            )
            return ExtractPage(items=items, next_cursor=after)

    @router.get(
        "/projects/{project_id}/extracts/{extract_id}",
        summary="An extract's status.",
        responses=problems(403, 404, 409),
    )
    def get_extract(
        project_id: str, extract_id: str, principal: Principal = Depends(auth)
    ) -> ExtractOut:
        with unit(ctx, principal, "extract.read") as s:
            guard(s, principal, project_id)
            return _out(load_extract(s, project_id, extract_id))

    @router.get(
        "/projects/{project_id}/extracts/{extract_id}/files/{name}",
        summary="Download one file of a built extract (audited). Its data files (Parquet, "
        "CSV) only where the approval permits `row-level-download`; the manifest and data "
        "dictionary always.",
        response_class=FileResponse,
        responses=problems(403, 404, 409),
    )
    def download(
        project_id: str, extract_id: str, name: str, principal: Principal = Depends(auth)
    ) -> FileResponse:
        with unit(ctx, principal, "extract.download") as s:
            guard(s, principal, project_id)
            row = load_extract(s, project_id, extract_id)
            if row.state != "succeeded" or not row.directory:
                raise conflict("the extract is not ready", "extract", extract_id, project_id)
            files = {f["name"]: f for f in row.manifest.get("files", [])}
            if name != "manifest.json" and name not in files:
                raise not_found("extract-file", extract_id, project_id)
            approval = s.get(ProjectApprovalRow, project_id)
            permitted = list(approval.egress or []) if approval is not None else []
            refusal = download_refusal(files.get(name, {}).get("format"), permitted)
            if refusal is not None:
                raise forbidden(refusal, "extract-file", extract_id, project_id)
            path = Path(row.directory) / name
            if not path.is_file():
                raise not_found("extract-file", extract_id, project_id)
            egress = files.get(name, {}).get("format") in ROW_LEVEL_FORMATS
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="extract.download",
                object_type="extract",
                object_id=extract_id,
                project_id=project_id,
                detail={
                    "file": name,
                    "sha256": files.get(name, {}).get("sha256"),
                    **({"egress": Egress.ROW_LEVEL_DOWNLOAD.value} if egress else {}),
                },
            )
        media = {
            ".csv": "text/csv",
            ".json": "application/json",
            ".parquet": "application/vnd.apache.parquet",
        }.get(path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=media, filename=name)

    return router
