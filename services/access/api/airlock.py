"""The airlock: outputs asking to leave a workspace, checked by ACRO, released by two checkers.

A member names an output's source (a query's result, a job's file or an extract table) and
what to compute from it (a table, a regression, a histogram, a survival table, or a job's
file as it is); ``workspace/checks.py`` runs ACRO on it in the sandbox, outside any database
transaction, and the verdict (pass, fail, review) is recorded with ACRO's per-check detail.
The rules are ``domain/airlock.py``'s: a failing output needs its author's exception request
with a reason; checkers comment, return, approve or reject; a returned output is resubmitted
as a new revision; two different independent checkers (never the author, nobody on the
project) approve the same revision to release it. Before release only checkers read its
files; after release the project's members download them. Everything is audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    Refused,
    authorised_data,
    caller_facts,
    conflict,
    forbidden,
    load_project,
    not_found,
    problems,
    refused_for,
    reviewable,
    unit,
)
from services.access.api.workspace import workspace_paths
from services.access.api.workspace_schemas import (
    ExceptionIn,
    OutputRequestIn,
    ResubmitIn,
    WorkspaceOutputOut,
    WorkspaceOutputPage,
    WorkspaceReviewIn,
    check_spec,
)
from services.access.bootstrap import AccessContext
from services.access.domain.airlock import (
    PRESETS,
    CheckStatus,
    Decision,
    OutputKind,
    OutputState,
    exception_problem,
    resubmit_problem,
    review_outcome,
    review_problem,
)
from services.access.domain.policy import Refusal, output_read_refusal, output_review_refusal
from services.access.domain.projects import Role
from services.access.storage.models import (
    AirlockOutputRow,
    AirlockReviewRow,
    JobRow,
    WorkspaceQueryRow,
)
from services.access.workspace.checks import CheckResult, check_output
from services.access.workspace.current import current_extract, extract_tables
from services.access.workspace.files import read_regular_file, sha256_of
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["airlock_router"]

_MEMBERS = "an accredited approved member of an active project is required"
_FILE_LIMIT = 50 << 20


def _approvers(s: Session, row: AirlockOutputRow) -> list[str]:
    return list(
        s.execute(
            select(AirlockReviewRow.checker).where(
                AirlockReviewRow.output_id == row.id,
                AirlockReviewRow.revision == row.revision,
                AirlockReviewRow.decision == Decision.APPROVE.value,
            )
        ).scalars()
    )


def _out(s: Session, row: AirlockOutputRow) -> WorkspaceOutputOut:
    reviews = s.execute(
        select(AirlockReviewRow)
        .where(AirlockReviewRow.output_id == row.id)
        .order_by(AirlockReviewRow.id)
    ).scalars()
    return WorkspaceOutputOut(
        id=row.id,
        project_id=row.project_id,
        author=row.author,
        title=row.title,
        kind=row.kind,
        source=row.source,
        spec=row.spec,
        preset=row.preset,
        state=row.state,  # type: ignore[arg-type]
        revision=row.revision,
        status=row.status,  # type: ignore[arg-type]
        summary=str((row.checks or {}).get("summary", "")),
        checks=row.checks or {},
        files=list(row.files or []),
        exception=row.exception,
        reviews=[
            {
                "revision": r.revision,
                "checker": r.checker,
                "decision": r.decision,
                "comment": r.comment,
                "at": r.at.isoformat(),
            }
            for r in reviews
        ],
        approvals=_approvers(s, row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        released_at=row.released_at,
    )


def airlock_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["airlock"], route_class=AuthenticatedRoute)
    settings = ctx.settings.workspace
    base = "/projects/{project_id}/workspace/outputs"

    def source_path(s: Session, project_id: str, source: dict[str, Any]) -> Path:
        """The file an output is computed from, inside the project's own workspace."""
        paths = workspace_paths(ctx, project_id)
        bad = Refused(
            422,
            "Output not valid",
            kind="output-not-valid",
            detail="no such source in the workspace",
            outcome="refused",
            object_type="project",
            object_id=project_id,
            project_id=project_id,
        )
        if source.get("query"):
            query = s.get(WorkspaceQueryRow, source["query"])
            if query is None or query.project_id != project_id or query.state != "succeeded":
                raise bad
            return paths.query_result(query.id)
        if source.get("job"):
            job = s.get(JobRow, source["job"])
            if job is None or job.project_id != project_id or job.state != "succeeded":
                raise bad
            recorded = {f["name"]: f["sha256"] for f in job.outputs or []}
            name = str(source.get("file"))
            path = paths.job_output(job.id) / name
            # What the job wrote, unchanged since it ended, and no link anywhere on the way.
            if name not in recorded or path.resolve() != path or not path.is_file():
                raise bad
            if sha256_of(path) != recorded[name]:
                raise bad
            return path
        extract = current_extract(s, project_id)
        tables = extract_tables(extract) if extract is not None else {}
        if source.get("table") not in tables:
            raise bad
        return tables[str(source["table"])].path

    def checked(
        kind: OutputKind, spec: dict[str, Any], preset: str, source: Path, folder: Path
    ) -> CheckResult:
        with ctx.job_slots:
            return check_output(kind, spec, PRESETS[preset], source, folder, settings, ctx.runner)

    def check_refusal(result: CheckResult, project_id: str) -> Refused:
        return Refused(
            422,
            "Output could not be checked",
            kind="output-check-failed",
            detail=result.error or "the check failed",
            outcome="refused",
            object_type="project",
            object_id=project_id,
            project_id=project_id,
        )

    def load(s: Session, project_id: str, output_id: str) -> AirlockOutputRow:
        row = s.get(AirlockOutputRow, output_id)
        if row is None or row.project_id != project_id:
            raise not_found("workspace-output", output_id, project_id)
        return row

    def readable(s: Session, principal: Principal, project_id: str, output_id: str) -> Any:
        _, facts, _ = load_project(s, project_id)
        why = output_read_refusal(caller_facts(s, principal), facts)
        if why is not None:
            raise refused_for(
                why, "members and checkers only", "workspace-output", output_id, project_id
            )
        return facts

    def authored(s: Session, principal: Principal, project_id: str, oid: str) -> AirlockOutputRow:
        authorised_data(s, principal, project_id, _MEMBERS)
        row = load(s, project_id, oid)
        if row.author != principal.subject:
            raise forbidden("only its author", "workspace-output", oid, project_id)
        return row

    @router.post(
        base,
        status_code=status.HTTP_201_CREATED,
        summary="Ask for an output to leave the workspace: ACRO computes and checks it from "
        "its source (audited). 422 if the source or spec cannot be checked.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def submit(
        project_id: str, body: OutputRequestIn, principal: Principal = Depends(auth)
    ) -> WorkspaceOutputOut:
        spec = check_spec(body.kind, body.spec)
        source_in = body.source.model_dump(exclude_none=True)
        with unit(ctx, principal, "airlock.submit") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            source = source_path(s, project_id, source_in)
        output_id = str(uuid.uuid4())
        folder = workspace_paths(ctx, project_id).output(output_id, 1)
        result = checked(OutputKind(body.kind), spec, body.preset, source, folder)
        with unit(ctx, principal, "airlock.submit") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            if result.status is None:
                raise check_refusal(result, project_id)
            row = AirlockOutputRow(
                id=output_id,
                project_id=project_id,
                author=principal.subject,
                title=body.title,
                kind=body.kind,
                source=source_in,
                spec=spec,
                preset=body.preset,
                state=OutputState.SUBMITTED.value,
                revision=1,
                status=result.status.value,
                checks=result.acro,
                files=result.files,
                exception=body.exception,
            )
            s.add(row)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="airlock.submit",
                object_type="workspace-output",
                object_id=output_id,
                project_id=project_id,
                detail={
                    "kind": body.kind,
                    "source": source_in,
                    "preset": body.preset,
                    "status": result.status.value,
                    "exception": body.exception is not None,
                    "files": [{"name": f["name"], "sha256": f["sha256"]} for f in result.files],
                },
            )
            return _out(s, row)

    @router.get(
        base,
        summary="The workspace's outputs (members; independent output checkers), oldest "
        "first, a page at a time.",
        responses=problems(404, 409, 422),
    )
    def list_outputs(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> WorkspaceOutputPage:
        with unit(ctx, principal, "airlock.list") as s:
            readable(s, principal, project_id, "-")
            items, after = keyset_page(
                s.scalars,
                select(AirlockOutputRow).where(AirlockOutputRow.project_id == project_id),
                (AirlockOutputRow.created_at, AirlockOutputRow.id),
                limit=limit,
                cursor=cursor,
                item=lambda row: _out(s, row),
            )
            return WorkspaceOutputPage(items=items, next_cursor=after)

    @router.get(
        base + "/{output_id}",
        summary="One output with ACRO's checks and its reviews.",
        responses=problems(404, 409),
    )
    def get_output(
        project_id: str, output_id: str, principal: Principal = Depends(auth)
    ) -> WorkspaceOutputOut:
        with unit(ctx, principal, "airlock.read") as s:
            readable(s, principal, project_id, output_id)
            return _out(s, load(s, project_id, output_id))

    @router.post(
        base + "/{output_id}/exception",
        summary="The author asks for an exception to a failed check, with a reason.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def request_exception(
        project_id: str, output_id: str, body: ExceptionIn, principal: Principal = Depends(auth)
    ) -> WorkspaceOutputOut:
        with unit(ctx, principal, "airlock.exception") as s:
            row = authored(s, principal, project_id, output_id)
            problem = exception_problem(OutputState(row.state), len(_approvers(s, row)))
            if problem is not None:
                raise conflict(problem, "workspace-output", output_id, project_id)
            row.exception = body.reason
            row.updated_at = datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="airlock.exception",
                object_type="workspace-output",
                object_id=output_id,
                project_id=project_id,
                detail={"revision": row.revision},
            )
            return _out(s, row)

    @router.post(
        base + "/{output_id}/resubmit",
        summary="The author resubmits a returned output: checked again as a new revision.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def resubmit(
        project_id: str, output_id: str, body: ResubmitIn, principal: Principal = Depends(auth)
    ) -> WorkspaceOutputOut:
        with unit(ctx, principal, "airlock.resubmit") as s:
            row = authored(s, principal, project_id, output_id)
            problem = resubmit_problem(OutputState(row.state))
            if problem is not None:
                raise conflict(problem, "workspace-output", output_id, project_id)
            kind, revision = OutputKind(row.kind), row.revision + 1
            try:
                spec = check_spec(kind.value, body.spec if body.spec is not None else row.spec)
            except ValueError as exc:
                raise Refused(
                    422,
                    "Output not valid",
                    kind="output-not-valid",
                    detail=str(exc).splitlines()[0][:300],
                    outcome="refused",
                    object_type="workspace-output",
                    object_id=output_id,
                    project_id=project_id,
                ) from None
            preset = body.preset or row.preset
            source = source_path(s, project_id, row.source)
        folder = workspace_paths(ctx, project_id).output(output_id, revision)
        result = checked(kind, spec, preset, source, folder)
        with unit(ctx, principal, "airlock.resubmit") as s:
            row = authored(s, principal, project_id, output_id)
            if result.status is None:
                raise check_refusal(result, project_id)
            if row.state != OutputState.RETURNED or row.revision + 1 != revision:
                raise conflict("resubmitted meanwhile", "workspace-output", output_id, project_id)
            row.revision, row.spec, row.preset = revision, spec, preset
            row.status, row.checks, row.files = result.status.value, result.acro, result.files
            row.exception = body.exception
            row.state = OutputState.SUBMITTED.value
            row.updated_at = datetime.now(UTC)
            if body.comment:
                s.add(
                    AirlockReviewRow(
                        output_id=output_id,
                        revision=revision,
                        checker=principal.subject,
                        decision="resubmit",
                        comment=body.comment,
                    )
                )
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="airlock.resubmit",
                object_type="workspace-output",
                object_id=output_id,
                project_id=project_id,
                detail={"revision": revision, "status": result.status.value},
            )
            return _out(s, row)

    @router.post(
        base + "/{output_id}/reviews",
        status_code=status.HTTP_201_CREATED,
        summary="An independent checker comments, returns, approves or rejects the current "
        "revision; two approvals by different checkers release it.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def review(
        project_id: str,
        output_id: str,
        body: WorkspaceReviewIn,
        principal: Principal = Depends(auth),
    ) -> WorkspaceOutputOut:
        with unit(ctx, principal, "airlock.review") as s:
            _, facts, _ = load_project(s, project_id)
            caller = caller_facts(s, principal)
            if output_read_refusal(caller, facts) is Refusal.HIDDEN:
                raise not_found("workspace-output", output_id, project_id)
            row = load(s, project_id, output_id)
            why = output_review_refusal(caller, facts, row.author)
            if why is not None:
                raise refused_for(
                    why,
                    "only an independent output checker reviews; authors cannot release their own",
                    "workspace-output",
                    output_id,
                    project_id,
                )
            decision = Decision(body.decision)
            approvers = _approvers(s, row)
            problem = review_problem(
                state=OutputState(row.state),
                status=CheckStatus(row.status),
                exception=row.exception,
                decision=decision,
                already_approved=principal.subject in approvers,
            )
            if problem is not None:
                raise conflict(problem, "workspace-output", output_id, project_id)
            s.add(
                AirlockReviewRow(
                    output_id=output_id,
                    revision=row.revision,
                    checker=principal.subject,
                    decision=decision.value,
                    comment=body.comment,
                )
            )
            if decision is Decision.APPROVE:
                approvers.append(principal.subject)
            state = review_outcome(OutputState(row.state), decision, approvers, row.author)
            row.state, row.updated_at = state.value, datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="airlock.review",
                object_type="workspace-output",
                object_id=output_id,
                project_id=project_id,
                detail={"decision": decision.value, "revision": row.revision},
            )
            if state is OutputState.RELEASED:
                row.released_at = datetime.now(UTC)
                ctx.audit.append(
                    s,
                    actor=principal.subject,
                    action="airlock.release",
                    object_type="workspace-output",
                    object_id=output_id,
                    project_id=project_id,
                    detail={
                        "revision": row.revision,
                        "checkers": sorted(set(approvers)),
                        "status": row.status,
                        "exception": row.exception is not None,
                        "files": [{"name": f["name"], "sha256": f["sha256"]} for f in row.files],
                    },
                )
            return _out(s, row)

    @router.get(
        base + "/{output_id}/files/{name}",
        summary="One file of an output: checkers before release, the project's members once "
        "released (audited).",
        response_class=Response,
        responses=problems(403, 404, 409),
    )
    def download(
        project_id: str, output_id: str, name: str, principal: Principal = Depends(auth)
    ) -> Response:
        with unit(ctx, principal, "airlock.download") as s:
            facts = readable(s, principal, project_id, output_id)
            row = load(s, project_id, output_id)
            files = {f["name"]: f for f in row.files or []}
            if name not in files:
                raise not_found("workspace-output-file", name, project_id)
            released = row.state == OutputState.RELEASED
            checker = output_review_refusal(caller_facts(s, principal), facts, row.author) is None
            if not released and not checker:
                raise conflict(
                    "the output has not been released", "workspace-output", output_id, project_id
                )
            path = workspace_paths(ctx, project_id).output(output_id, row.revision) / name
            data = read_regular_file(path, limit=_FILE_LIMIT)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="airlock.download",
                object_type="workspace-output",
                object_id=output_id,
                project_id=project_id,
                detail={
                    "file": name,
                    "sha256": files[name]["sha256"],
                    "revision": row.revision,
                    "as": "member" if released and not checker else Role.OUTPUT_CHECKER.value,
                },
            )
        media = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get(
        "/workspace/outputs",
        summary="Workspace outputs awaiting review (output checkers; not their own projects), "
        "oldest first, a page at a time.",
        responses=problems(403, 422),
    )
    def queue(
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> WorkspaceOutputPage:
        with unit(ctx, principal, "airlock.queue") as s:
            if not principal.has_role(Role.OUTPUT_CHECKER.value):
                raise forbidden("output checkers only", "workspace-output", "-")
            items, after = keyset_page(
                s.scalars,
                select(AirlockOutputRow).where(
                    AirlockOutputRow.state == OutputState.SUBMITTED.value
                ),
                (AirlockOutputRow.created_at, AirlockOutputRow.id),
                limit=limit,
                cursor=cursor,
                item=reviewable(s, principal, lambda row: _out(s, row)),
            )
            return WorkspaceOutputPage(items=items, next_cursor=after)

    return router
