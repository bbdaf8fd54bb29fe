"""Analysis jobs: a member's Python script run next to the workspace's data, sandboxed.

A job is recorded ``queued`` with its code's SHA-256, its requirements (from the runtime's
allow-list) and its inputs (the extract's files with their SHA-256), and audited; it runs
as a background task, one at a time per process (``AccessContext.job_slots``), on the
context's runner (``workspace/runner.py``: bubblewrap here, or a Kubernetes Job): ``/data``
the extract and ``/workspace`` the project's workspace, both read-only, ``/output`` its own
writable folder, no network, rlimits and a deadline. Its end (state, which limit, exit
status) and its outputs (name, bytes, SHA-256) are recorded and audited. The replica that
accepted a job owns it under a lease (``api/job_leases.py``); a job whose owner's lease
expired is failed as interrupted by any live replica, never one a live replica runs.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    Refused,
    authorised_data,
    not_found,
    problems,
    unit,
)
from services.access.api.job_leases import fail_expired_jobs, lease_until
from services.access.api.workspace import workspace_extract, workspace_paths
from services.access.api.workspace_schemas import JobIn, JobOut, JobPage
from services.access.bootstrap import AccessContext
from services.access.domain.jobs import JobEnd, JobState, requirements_problem
from services.access.storage.models import JobRow
from services.access.workspace.current import current_extract, extract_tables
from services.access.workspace.files import collect_regular_files
from services.access.workspace.runner import JobRun, JobSpec, log_tail
from services.access.workspace.sandbox import SandboxLimits
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.db import transaction
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["job_out", "jobs_router", "recover_interrupted_jobs", "run_job"]

_log = logging.getLogger("fjo.access.jobs")
_MEMBERS = "an accredited approved member of an active project is required"


def job_out(row: JobRow) -> JobOut:
    return JobOut(
        id=row.id,
        project_id=row.project_id,
        author=row.author,
        name=row.name,
        state=row.state,  # type: ignore[arg-type]
        reason=row.reason,
        detail=row.detail,
        exit_code=row.exit_code,
        script_sha256=row.script_sha256,
        requirements=list(row.requirements or []),
        extract_id=row.extract_id,
        inputs=list(row.inputs or []),
        outputs=list(row.outputs or []),
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def run_job(ctx: AccessContext, job_id: str) -> None:
    """Run one queued job on the context's runner; every outcome is recorded on the row and
    audited, the same way whichever runner ran it."""
    jobs = ctx.settings.workspace.jobs
    with ctx.job_slots:
        with transaction(ctx.sessions) as s:
            row = s.get(JobRow, job_id)
            if row is None or row.state != JobState.QUEUED or row.owner != ctx.replica:
                return  # run, or failed as interrupted meanwhile
            extract = current_extract(s, row.project_id)
            if extract is None or extract.id != row.extract_id:
                _finish(ctx, s, row, JobRun(_NO_EXTRACT, None), [], 0)
                return
            row.state = JobState.RUNNING.value
            row.started_at = datetime.now(UTC)
            row.lease_until = lease_until(ctx)
            project_id, data_dir = row.project_id, extract.directory
        paths = workspace_paths(ctx, project_id)
        folder = paths.job(job_id)
        spec = JobSpec(
            job_id=job_id,
            project_id=project_id,
            workspace=paths.base,
            data=Path(data_dir or ""),
            script=folder / "script.py",
            output=paths.job_output(job_id),
            log=folder / "log.txt",
            limits=SandboxLimits(
                cpu_s=jobs.cpu_s,
                memory_mb=jobs.memory_mb,
                wall_s=jobs.wall_s,
                processes=jobs.max_processes,
                open_files=jobs.max_open_files,
                file_mb=jobs.max_file_mb,
            ),
        )
        run = ctx.runner.run(spec)
        outputs: list[dict[str, Any]] = []
        dropped = 0
        if spec.output.is_dir():
            outputs, dropped = collect_regular_files(spec.output)
        with transaction(ctx.sessions) as s:
            row = s.get(JobRow, job_id)
            assert row is not None
            if row.state != JobState.RUNNING or row.owner != ctx.replica:
                # Its lease expired (this replica lost the database for longer than a
                # lease) and another replica failed it: that end stands.
                _log.warning("job ended after its lease", extra={"job_id": job_id})
                return
            _finish(ctx, s, row, run, outputs, dropped)


_NO_EXTRACT = JobEnd(JobState.FAILED, "no-extract", "its extract is no longer current")


def _finish(
    ctx: AccessContext,
    s: Session,
    row: JobRow,
    run: JobRun,
    outputs: list[dict[str, Any]],
    dropped: int,
) -> None:
    end = run.end
    row.state = end.state.value
    row.reason, row.detail = end.reason, end.detail
    row.exit_code = run.exit_code
    row.outputs = outputs
    row.finished_at = datetime.now(UTC)
    row.owner, row.lease_until = None, None
    detail: dict[str, Any] = {"reason": end.reason}
    if end.reason != "no-extract":
        detail |= {
            "exit_code": run.exit_code,
            "outputs": [{"name": f["name"], "sha256": f["sha256"]} for f in outputs],
            "dropped": dropped,
            "runner": row.runner,
        }
    ctx.audit.append(
        s,
        actor=row.author,
        action="workspace.job.finish",
        outcome="ok" if end.state is JobState.SUCCEEDED else "failed",
        object_type="job",
        object_id=row.id,
        project_id=row.project_id,
        detail=detail,
    )


def recover_interrupted_jobs(ctx: AccessContext) -> int:
    """At start: fail the jobs whose owner's lease has expired (never those of a live
    replica); returns how many."""
    return len(fail_expired_jobs(ctx))


def jobs_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["workspace"], route_class=AuthenticatedRoute)
    jobs = ctx.settings.workspace.jobs

    def load_job(s: Any, project_id: str, job_id: str) -> JobRow:
        row = s.get(JobRow, job_id)
        if row is None or row.project_id != project_id:
            raise not_found("job", job_id, project_id)
        return row

    @router.post(
        "/projects/{project_id}/workspace/jobs",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Submit a Python script to run next to the data (sandboxed; audited).",
        responses=problems(400, 403, 404, 409, 422),
    )
    def submit_job(
        project_id: str,
        body: JobIn,
        background: BackgroundTasks,
        principal: Principal = Depends(auth),
    ) -> JobOut:
        with unit(ctx, principal, "workspace.job.submit") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            problem = requirements_problem(body.requirements, jobs.packages)
            script = body.script.encode()
            if problem is None and len(script) > jobs.max_script_bytes:
                problem = f"the script is larger than {jobs.max_script_bytes} bytes"
            if problem is not None:
                raise Refused(
                    422,
                    "Job not valid",
                    kind="job-not-valid",
                    detail=problem,
                    outcome="refused",
                    object_type="project",
                    object_id=project_id,
                    project_id=project_id,
                )
            extract = workspace_extract(s, project_id)
            job_id = str(uuid.uuid4())
            folder = workspace_paths(ctx, project_id).job(job_id)
            folder.mkdir(parents=True)
            (folder / "script.py").write_bytes(script)
            inputs = [
                {"name": f"/data/{t.path.name}", "sha256": t.sha256}
                for t in extract_tables(extract).values()
            ]
            row = JobRow(
                id=job_id,
                project_id=project_id,
                author=principal.subject,
                name=body.name,
                script_sha256=hashlib.sha256(script).hexdigest(),
                requirements=sorted({r.lower() for r in body.requirements}),
                extract_id=extract.id,
                inputs=inputs,
                state=JobState.QUEUED.value,
                outputs=[],
                runner=ctx.runner.name,
                owner=ctx.replica,
                lease_until=lease_until(ctx),
            )
            s.add(row)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="workspace.job.submit",
                object_type="job",
                object_id=job_id,
                project_id=project_id,
                detail={
                    "name": body.name,
                    "script_sha256": row.script_sha256,
                    "requirements": row.requirements,
                    "extract_id": extract.id,
                    "inputs": inputs,
                    "runner": row.runner,
                },
            )
            out = job_out(row)
        background.add_task(run_job, ctx, job_id)
        return out

    @router.get(
        "/projects/{project_id}/workspace/jobs",
        summary="The workspace's jobs, oldest first, a page at a time.",
        responses=problems(403, 404, 409, 422),
    )
    def list_jobs(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> JobPage:
        with unit(ctx, principal, "workspace.job.list") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            items, after = keyset_page(
                s.scalars,
                select(JobRow).where(JobRow.project_id == project_id),
                (JobRow.submitted_at, JobRow.id),
                limit=limit,
                cursor=cursor,
                item=job_out,
            )
            return JobPage(items=items, next_cursor=after)

    @router.get(
        "/projects/{project_id}/workspace/jobs/{job_id}",
        summary="A job's status, inputs and outputs.",
        responses=problems(403, 404, 409),
    )
    def get_job(project_id: str, job_id: str, principal: Principal = Depends(auth)) -> JobOut:
        with unit(ctx, principal, "workspace.job.read") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            return job_out(load_job(s, project_id, job_id))

    @router.get(
        "/projects/{project_id}/workspace/jobs/{job_id}/log",
        summary="The job's log (its tail; shown in the session, audited).",
        response_class=PlainTextResponse,
        responses=problems(403, 404, 409),
    )
    def get_log(
        project_id: str, job_id: str, principal: Principal = Depends(auth)
    ) -> PlainTextResponse:
        with unit(ctx, principal, "workspace.job.log") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            load_job(s, project_id, job_id)
            text = log_tail(
                workspace_paths(ctx, project_id).job(job_id) / "log.txt", jobs.log_bytes
            )
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="workspace.job.log",
                object_type="job",
                object_id=job_id,
                project_id=project_id,
                detail={"bytes": len(text.encode())},
            )
        return PlainTextResponse(text)

    return router
