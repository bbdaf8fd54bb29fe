"""Analysis jobs: a member's Python script run next to the workspace's data, sandboxed.

A job is recorded ``queued`` with its code's SHA-256, its requirements (from the runtime's
allow-list) and its inputs (the extract's files with their SHA-256), and audited; it runs
as a background task, one at a time per process (``AccessContext.job_slots``), in the
bubblewrap sandbox (``workspace/sandbox.py``): ``/data`` the extract and ``/workspace`` the
project's workspace, both read-only, ``/output`` its own writable folder, no network,
rlimits and a deadline. Its end (state, which limit, exit status) and its outputs (name,
bytes, SHA-256) are recorded and audited. A job left unfinished by a process that died is
marked failed at the next start (``recover_interrupted_jobs``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from services.access.api.deps import (
    Refused,
    authorised_data,
    not_found,
    problems,
    unit,
)
from services.access.api.workspace import workspace_extract, workspace_paths
from services.access.api.workspace_schemas import JobIn, JobOut
from services.access.bootstrap import AccessContext
from services.access.domain.jobs import JobEnd, JobState, read_job_end, requirements_problem
from services.access.storage.models import JobRow
from services.access.workspace.current import current_extract, extract_tables
from services.access.workspace.files import collect_regular_files
from services.access.workspace.sandbox import (
    Bind,
    SandboxLimits,
    job_environment,
    run_sandboxed,
)
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.db import transaction

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


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(size - limit, 0))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_job(ctx: AccessContext, job_id: str) -> None:
    """Run one queued job in the sandbox; every outcome is recorded on the row and audited."""
    jobs = ctx.settings.workspace.jobs
    with ctx.job_slots:
        with transaction(ctx.sessions) as s:
            row = s.get(JobRow, job_id)
            if row is None or row.state != JobState.QUEUED:
                return
            extract = current_extract(s, row.project_id)
            if extract is None or extract.id != row.extract_id:
                row.state = JobState.FAILED.value
                row.reason, row.detail = "no-extract", "its extract is no longer current"
                row.finished_at = datetime.now(UTC)
                ctx.audit.append(
                    s,
                    actor=row.author,
                    action="workspace.job.finish",
                    outcome="failed",
                    object_type="job",
                    object_id=job_id,
                    project_id=row.project_id,
                    detail={"reason": "no-extract"},
                )
                return
            row.state = JobState.RUNNING.value
            row.started_at = datetime.now(UTC)
            project_id, author, data_dir = row.project_id, row.author, extract.directory
        paths = workspace_paths(ctx, project_id)
        folder = paths.job(job_id)
        output = paths.job_output(job_id)
        output.mkdir(parents=True, exist_ok=True)
        try:
            result = run_sandboxed(
                [sys.executable, "-I", "/job/script.py"],
                [
                    Bind(paths.base, "/workspace"),
                    Bind(folder / "script.py", "/job/script.py"),
                    Bind(output, "/output", writable=True),
                    Bind(Path(data_dir or ""), "/data"),
                ],
                SandboxLimits(
                    cpu_s=jobs.cpu_s,
                    memory_mb=jobs.memory_mb,
                    wall_s=jobs.wall_s,
                    processes=jobs.max_processes,
                    open_files=jobs.max_open_files,
                    file_mb=jobs.max_file_mb,
                ),
                log=folder / "log.txt",
                bwrap=jobs.bwrap,
                uid=jobs.sandbox_uid,
                env=job_environment(),
                cwd="/output",
                owned=[output],
            )
            tail = _tail(folder / "log.txt", 4000)
            end = read_job_end(result.exit_code, timed_out=result.timed_out, log_tail=tail)
            outputs, dropped = collect_regular_files(output)
            exit_code: int | None = result.exit_code
        except OSError as exc:  # bubblewrap missing or not permitted: the job did not run
            _log.error("job sandbox failed", extra={"error_type": type(exc).__name__})
            end = JobEnd(JobState.FAILED, "sandbox-unavailable", "the sandbox did not start")
            outputs, dropped, exit_code = [], 0, None
        with transaction(ctx.sessions) as s:
            row = s.get(JobRow, job_id)
            assert row is not None
            row.state = end.state.value
            row.reason, row.detail = end.reason, end.detail
            row.exit_code = exit_code
            row.outputs = outputs
            row.finished_at = datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=author,
                action="workspace.job.finish",
                outcome="ok" if end.state is JobState.SUCCEEDED else "failed",
                object_type="job",
                object_id=job_id,
                project_id=project_id,
                detail={
                    "reason": end.reason,
                    "exit_code": exit_code,
                    "outputs": [{"name": f["name"], "sha256": f["sha256"]} for f in outputs],
                    "dropped": dropped,
                },
            )


def recover_interrupted_jobs(ctx: AccessContext) -> int:
    """Mark jobs a dead process left queued or running as failed; returns how many."""
    with transaction(ctx.sessions) as s:
        rows = list(
            s.execute(
                select(JobRow).where(JobRow.state.in_((JobState.QUEUED, JobState.RUNNING)))
            ).scalars()
        )
        for row in rows:
            row.state = JobState.FAILED.value
            row.reason, row.detail = "interrupted", "interrupted by a restart; submit it again"
            row.finished_at = datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=None,
                action="workspace.job.finish",
                outcome="failed",
                object_type="job",
                object_id=row.id,
                project_id=row.project_id,
                detail={"reason": "interrupted"},
            )
        return len(rows)


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
                    "runner": row.runner or "bubblewrap",
                },
            )
            out = job_out(row)
        background.add_task(run_job, ctx, job_id)
        return out

    @router.get(
        "/projects/{project_id}/workspace/jobs",
        summary="The workspace's jobs (oldest first).",
        responses=problems(403, 404, 409),
    )
    def list_jobs(project_id: str, principal: Principal = Depends(auth)) -> list[JobOut]:
        with unit(ctx, principal, "workspace.job.list") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            rows = s.execute(
                select(JobRow).where(JobRow.project_id == project_id).order_by(JobRow.submitted_at)
            ).scalars()
            return [job_out(r) for r in rows]

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
            text = _tail(workspace_paths(ctx, project_id).job(job_id) / "log.txt", jobs.log_bytes)
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
