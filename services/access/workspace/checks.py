"""Running the airlock's checks: ACRO on the output's source data, on the job-runner port
(bubblewrap locally, a Kubernetes Job under the jobs' deny-all NetworkPolicy in a cluster).

The source (a query result, a job's file or an extract table) is shown to the run
read-only as ``/source/<name>``, fjo's ``acro_runner.py`` and its request read-only at
``/acro``; the runner computes the output and writes ACRO's ``results.json`` and the
output's files into the run's ``/result``, which fjo reads back, whichever runner ran it,
as regular files only, into the revision's folder. What runs there is fjo's code on fjo's
request (column names, no formulas), so the verdict is the data's, not the researcher's.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.access.config import WorkspaceSettings
from services.access.domain.airlock import AcroPreset, CheckStatus, OutputKind
from services.access.domain.jobs import JobState
from services.access.workspace.files import collect_regular_files, read_regular_file
from services.access.workspace.runner import CheckSpec, JobRun, JobRunner
from services.access.workspace.sandbox import SandboxLimits

__all__ = ["CheckResult", "check_output"]

_RUNNER = Path(__file__).with_name("acro_runner.py")
_RESULT_LIMIT = 20 << 20


@dataclass(slots=True)
class CheckResult:
    status: CheckStatus | None
    summary: str = ""
    acro: dict[str, Any] = field(default_factory=dict)
    """ACRO's record of the output (``results.json``'s entry): status, summary, per-check
    cell positions (``sdc``), per-cell outcome, the checks' FAIR description."""
    files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _limits(settings: WorkspaceSettings) -> SandboxLimits:
    jobs = settings.jobs
    return SandboxLimits(
        cpu_s=max(jobs.cpu_s, 60),
        memory_mb=jobs.memory_mb,
        wall_s=settings.check_wall_s,
        processes=jobs.max_processes,
        open_files=jobs.max_open_files,
        file_mb=jobs.max_file_mb,
    )


def check_output(
    kind: OutputKind,
    spec: dict[str, Any],
    preset: AcroPreset,
    source: Path,
    folder: Path,
    settings: WorkspaceSettings,
    runner: JobRunner,
) -> CheckResult:
    """Check (and compute) one output revision into ``folder`` (created afresh)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kind is OutputKind.FILE:
        shutil.copyfile(source, folder / source.name, follow_symlinks=False)
        files, _ = collect_regular_files(folder)
        return CheckResult(
            status=CheckStatus.REVIEW,
            summary="free-form file: ACRO cannot check it; a person must judge it",
            acro={"status": "review", "type": "custom", "summary": "review"},
            files=files,
        )
    work = folder.with_name(folder.name + ".check")
    shutil.rmtree(work, ignore_errors=True)
    (work / "check").mkdir(parents=True)
    request = {
        "kind": kind.value,
        "spec": spec,
        "source": f"/source/{source.name}",
        "config": preset.acro_config(),
        "mitigation": preset.mitigation,
        "round_to": preset.round_to,
    }
    (work / "check" / "request.json").write_text(json.dumps(request))
    # A copy beside the request: a pod mounts only its project's part of the workspaces
    # volume, never access's own files.
    shutil.copyfile(_RUNNER, work / "check" / "acro_runner.py")
    run = runner.run_check(
        CheckSpec(
            check_id=secrets.token_hex(8),
            # The revision's folder is <root>/<project>/outputs/<output>/r<n>
            # (WorkspacePaths.output); a runner refuses mounts outside that project.
            project_id=folder.parents[2].name,
            check=work / "check",
            source=source,
            result=work / "result",
            log=work / "log.txt",
            limits=_limits(settings),
        )
    )
    try:
        return _read(work / "result", folder, run)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read(result: Path, folder: Path, run: JobRun) -> CheckResult:
    if run.end.state is not JobState.SUCCEEDED or run.exit_code != 0:
        why = run.end.detail or f"exited with status {run.exit_code}"
        return CheckResult(status=None, error=f"the check did not finish: {why}")
    try:
        verdict = json.loads(read_regular_file(result / "check.json", limit=_RESULT_LIMIT))
    except (OSError, ValueError):
        return CheckResult(status=None, error="the check left no verdict")
    if not verdict.get("ok"):
        return CheckResult(status=None, error=str(verdict.get("error", "check failed"))[:500])
    outputs = {
        uid: record
        for uid, record in ((verdict.get("results") or {}).get("results") or {}).items()
        if "DONT_RELEASE" not in uid  # ACRO's own session summary, not the output
    }
    if len(outputs) != 1:
        return CheckResult(status=None, error="the check did not produce exactly one output")
    (record,) = outputs.values()
    try:
        status = CheckStatus(str(record.get("status")))
    except ValueError:
        return CheckResult(status=None, error="the check's status is not pass, fail or review")
    names = {str(f.get("name")) for f in record.get("files", []) if isinstance(f, dict)}
    for name in sorted(names):
        source = result / "acro" / name
        if "/" in name or name.startswith("."):
            continue
        try:
            data = read_regular_file(source, limit=_RESULT_LIMIT)
        except (OSError, ValueError):
            continue
        (folder / name).write_bytes(data)
    (folder / "results.json").write_text(json.dumps(verdict["results"], indent=1, default=str))
    files, _ = collect_regular_files(folder)
    return CheckResult(
        status=status,
        summary=str(record.get("summary", "")),
        acro=record,
        files=files,
    )
