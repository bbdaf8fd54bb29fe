"""Analysis jobs: what a job may ask for, and what its end means.

Pure. A job names its requirements from the runtime's allow-list (nothing is installed at
run time); its end is read from the sandbox's exit status and deadline, so that a job that
hit a limit says which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "JobEnd",
    "JobState",
    "output_name_problem",
    "read_job_end",
    "read_pod_end",
    "requirements_problem",
]

_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_OUTPUT_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,3}"
)
_SIGXCPU, _SIGKILL, _SIGXFSZ, _SIGSEGV = 24, 9, 25, 11


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def requirements_problem(requirements: Sequence[str], allowed: Iterable[str]) -> str | None:
    """Why these requirements cannot be met (None: each is preinstalled). A version pin is
    refused too: the runtime has the one version it has, recorded with the job."""
    allow = {a.lower() for a in allowed}
    for i, name in enumerate(requirements):
        if not _REQUIREMENT.fullmatch(name):
            return f"requirement {i} is not a package name (no versions, URLs or options)"
        if name.lower() not in allow:
            return f"requirement {i} is not in the job runtime's allow-list"
    return None


def output_name_problem(name: str) -> str | None:
    """A job output's name: a relative path of plain parts (no ``..``, no leading dot)."""
    if not _OUTPUT_NAME.fullmatch(name) or ".." in name.split("/"):
        return "an output is named by a relative path of letters, digits, '.', '_' and '-'"
    return None


@dataclass(frozen=True, slots=True)
class JobEnd:
    state: JobState
    reason: str | None  # None, or which limit / failure: stable strings (docs/workspace.md)
    detail: str | None


def read_job_end(exit_code: int, *, timed_out: bool, log_tail: str) -> JobEnd:
    """What the sandbox's exit status (128 + signal for a signal) and the log's last lines
    say about how the job ended."""
    if timed_out:
        return JobEnd(JobState.FAILED, "time-limit", "stopped at its wall-clock deadline")
    if exit_code == 0:
        return JobEnd(JobState.SUCCEEDED, None, None)
    if exit_code in (128 + _SIGXCPU, 128 + _SIGKILL) and "MemoryError" not in log_tail:
        return JobEnd(JobState.FAILED, "cpu-limit", "stopped at its CPU-time limit")
    if exit_code == 128 + _SIGXFSZ or "File too large" in log_tail:
        return JobEnd(JobState.FAILED, "file-size-limit", "wrote a file past its size limit")
    if "MemoryError" in log_tail or "Cannot allocate memory" in log_tail:
        return JobEnd(JobState.FAILED, "memory-limit", "needed more memory than its limit")
    if "Resource temporarily unavailable" in log_tail and "fork" in log_tail.lower():
        return JobEnd(JobState.FAILED, "process-limit", "started more processes than allowed")
    if exit_code == 128 + _SIGSEGV:
        return JobEnd(JobState.FAILED, "crashed", "the interpreter crashed (SIGSEGV)")
    return JobEnd(JobState.FAILED, "script-failed", f"the script exited with status {exit_code}")


def read_pod_end(
    exit_code: int | None, *, reason: str | None, deadline_exceeded: bool, log_tail: str
) -> JobEnd:
    """The same ends from a Kubernetes Job: its ``DeadlineExceeded`` condition is the
    wall clock, the container's ``OOMKilled`` its memory limit (the cgroup's SIGKILL, which
    the exit status alone would read as the CPU limit's); the rest as from the sandbox (the
    pod's command sets the same rlimits)."""
    if deadline_exceeded:
        return JobEnd(JobState.FAILED, "time-limit", "stopped at its wall-clock deadline")
    if reason == "OOMKilled":
        return JobEnd(JobState.FAILED, "memory-limit", "needed more memory than its limit")
    if exit_code is None:
        return JobEnd(JobState.FAILED, "sandbox-unavailable", "the job's pod did not run")
    return read_job_end(exit_code, timed_out=False, log_tail=log_tail)
