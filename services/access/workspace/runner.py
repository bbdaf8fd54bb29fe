"""The job-runner port: where and how a job's script, or the airlock's ACRO check, runs
confined. Two adapters: the local bubblewrap sandbox (``LocalJobRunner``, here) and a
Kubernetes Job (``workspace/kubernetes.py``).

A runner gets the job's folders on the workspace volume and its limits; it shows the job
``/data`` (the extract) and ``/workspace`` (the project's workspace) read-only, the script at
``/job/script.py`` and ``/output`` writable, runs ``python -I /job/script.py`` in ``/output``
with no network, writes the job's log to ``spec.log`` and says how the job ended. Everything
after that (outputs and their SHA-256, the row, the audit) is one code path in
``api/jobs.py``, whichever runner ran the job.

A check (``CheckSpec``) runs the same way, with other mounts: fjo's ``acro_runner.py`` and
its ``request.json`` read-only at ``/acro``, the output's source file read-only at
``/source/<name>`` and the run's own writable ``/result``; reading the verdict back is one
code path in ``workspace/checks.py``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.access.domain.jobs import JobEnd, JobState, read_job_end
from services.access.workspace.sandbox import (
    Bind,
    MountCollision,
    SandboxLimits,
    job_environment,
    run_sandboxed,
)

__all__ = [
    "CHECK_ARGS",
    "SANDBOX_UNAVAILABLE",
    "SCRIPT",
    "CheckSpec",
    "JobRun",
    "JobRunner",
    "JobSpec",
    "LocalJobRunner",
    "log_tail",
]

_log = logging.getLogger("fjo.access.jobs")

SCRIPT = "/job/script.py"
CHECK_ARGS = ("/acro/acro_runner.py", "/acro/request.json")
"""What the check's Python runs (``python -I``), in ``/result``."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job's run: its folders on the workspace volume (absolute paths under the
    workspaces root) and its limits."""

    job_id: str
    project_id: str
    workspace: Path  # the project's workspace, shown read-only at /workspace
    data: Path  # the job's extract, shown read-only at /data
    script: Path  # shown read-only at /job/script.py
    output: Path  # the job's own writable /output
    log: Path  # where the runner leaves the job's stdout and stderr
    limits: SandboxLimits


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One run of the airlock's check: its folders on the workspace volume, all inside the
    project's own folder, and its limits."""

    check_id: str  # names the run (a Kubernetes Job's name): fresh for every run
    project_id: str
    check: Path  # acro_runner.py and request.json, shown read-only at /acro
    source: Path  # the output's source file, shown read-only at /source/<name>
    result: Path  # the run's own writable /result, where ACRO leaves its results
    log: Path
    limits: SandboxLimits

    @property
    def source_mount(self) -> str:
        return f"/source/{self.source.name}"


@dataclass(frozen=True, slots=True)
class JobRun:
    """How the job ended; ``exit_code`` is None when the script never ran."""

    end: JobEnd
    exit_code: int | None


SANDBOX_UNAVAILABLE = JobRun(
    JobEnd(JobState.FAILED, "sandbox-unavailable", "the sandbox did not start"), None
)


class JobRunner(Protocol):
    @property
    def name(self) -> str:
        """Recorded with each job (``runner``) and audited."""
        ...

    def run(self, spec: JobSpec) -> JobRun:
        """Run the job to its end (or its limits'); never raises for the job's own failure."""
        ...

    def run_check(self, spec: CheckSpec) -> JobRun:
        """Run the airlock's check the same way (its end reads as a job's)."""
        ...

    def abandon(self, job_id: str) -> None:
        """Stop what is left of a job whose owner died (its lease expired)."""
        ...


def log_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a log, decoded leniently ("" when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(size - limit, 0))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class LocalJobRunner:
    """bubblewrap in access's own process tree (``workspace/sandbox.py``)."""

    bwrap: str = "bwrap"
    uid: int = 65534
    name: str = "bubblewrap"

    def run(self, spec: JobSpec) -> JobRun:
        spec.output.mkdir(parents=True, exist_ok=True)
        binds = [
            Bind(spec.workspace, "/workspace"),
            Bind(spec.script, SCRIPT),
            Bind(spec.output, "/output", writable=True),
            Bind(spec.data, "/data"),
        ]
        return self._run([SCRIPT], binds, spec.limits, spec.log, "/output", spec.output)

    def run_check(self, spec: CheckSpec) -> JobRun:
        spec.result.mkdir(parents=True, exist_ok=True)
        binds = [
            Bind(spec.check, "/acro"),
            Bind(spec.source, spec.source_mount),
            Bind(spec.result, "/result", writable=True),
        ]
        return self._run(list(CHECK_ARGS), binds, spec.limits, spec.log, "/result", spec.result)

    def _run(
        self,
        argv: list[str],
        binds: list[Bind],
        limits: SandboxLimits,
        log: Path,
        cwd: str,
        writable: Path,
    ) -> JobRun:
        try:
            result = run_sandboxed(
                [sys.executable, "-I", *argv],
                binds,
                limits,
                log=log,
                bwrap=self.bwrap,
                uid=self.uid,
                env=job_environment(),
                cwd=cwd,
                owned=[writable],
            )
        except MountCollision as exc:  # an installation problem; say which
            _log.error("job sandbox failed: %s", exc, extra={"error_type": "MountCollision"})
            return JobRun(JobEnd(JobState.FAILED, "sandbox-unavailable", str(exc)), None)
        except OSError as exc:  # bubblewrap missing or not permitted: the job did not run
            _log.error("job sandbox failed", extra={"error_type": type(exc).__name__})
            return SANDBOX_UNAVAILABLE
        tail = log_tail(log, 4000)
        end = read_job_end(result.exit_code, timed_out=result.timed_out, log_tail=tail)
        return JobRun(end, result.exit_code)

    def abandon(self, job_id: str) -> None:
        # Nothing outlives its owner here: bubblewrap runs with --die-with-parent.
        del job_id
