"""The job runner on Kubernetes: each job a ``batch/v1`` Job in access's namespace.

The pod (``job_manifest``, docs/workspace.md "Jobs in Kubernetes"):

* is selected by the generated deny-all NetworkPolicy ``fjo-access-job`` (no ingress, no
  egress, not even DNS) through its ``app.kubernetes.io/name`` label;
* mounts from the workspaces claim only its own project's subpaths: the extract at
  ``/data``, the workspace at ``/workspace`` and the script, read-only, and the job's own
  output folder writable at ``/output``; a small ``emptyDir`` at ``/tmp``; nothing else;
* has no ServiceAccount token, runs as a non-root uid with a read-only root file system,
  no capabilities, no privilege escalation and the runtime's default seccomp profile;
* is limited in CPU, memory and ephemeral storage (from the same ``SandboxLimits``), by the
  same rlimits as the local sandbox (``prlimit``, but RLIMIT_NPROC), by
  ``activeDeadlineSeconds`` for the wall clock, with ``backoffLimit: 0`` (a job runs once)
  and ``ttlSecondsAfterFinished`` should access fail to delete it.

Access polls the Job until it ends, reads the container's end and its log, deletes the Job
and returns; ``api/jobs.py`` then collects the outputs and audits as for a local job.

The airlock's ACRO check (``check_manifest``) is the same pod with other mounts: the check's
folder (fjo's ``acro_runner.py`` and its ``request.json``) read-only at ``/acro``, the
output's source file read-only at ``/source/<name>`` and the run's own result folder
writable at ``/result``, all subpaths of the same project's folder.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.access.config import JobRunnerSettings
from services.access.domain.jobs import read_pod_end
from services.access.workspace.kube_api import KubeApi, KubeApiError
from services.access.workspace.runner import (
    CHECK_ARGS,
    SANDBOX_UNAVAILABLE,
    SCRIPT,
    CheckSpec,
    JobRun,
    JobSpec,
)
from services.access.workspace.sandbox import SandboxLimits, job_environment, rlimits

__all__ = [
    "JOB_LABELS",
    "JOB_NAME_LABEL",
    "KubernetesJobRunner",
    "check_manifest",
    "check_name",
    "job_manifest",
    "job_name",
]

_log = logging.getLogger("fjo.access.jobs")

JOB_NAME_LABEL = "fjo-access-job"
JOB_LABELS = {
    "app.kubernetes.io/name": JOB_NAME_LABEL,
    "app.kubernetes.io/part-of": "fjo",
    "app.kubernetes.io/component": "job",
    "fjo.dev/service": "access",
}
"""Every job pod's labels; the deny-all NetworkPolicy selects the first."""
CONTAINER = "job"
_TMP_MB = 64
_GRACE_S = 120.0  # past activeDeadlineSeconds: the API server itself may be slow to say so


def job_name(job_id: str) -> str:
    return f"fjo-job-{job_id}"


def check_name(check_id: str) -> str:
    return f"fjo-check-{check_id}"


def _sub_path(root: Path, path: Path, project_dir: str) -> str:
    """``path`` relative to the workspaces root, which must lie in the project's own folder:
    a pod never mounts the whole volume, nor another project's part of it."""
    rel = path.resolve().relative_to(root.resolve())
    if not rel.parts or rel.parts[0] != project_dir or ".." in rel.parts:
        raise ValueError("a job mounts only its own project's workspace")
    return rel.as_posix()


def job_manifest(spec: JobSpec, settings: JobRunnerSettings, root: Path) -> dict[str, Any]:
    """The Job that runs ``spec`` (pure: the same spec gives the same document)."""
    project = _sub_path(root, spec.workspace, spec.project_id)
    if project != spec.project_id:
        raise ValueError("the workspace is the project's folder itself")
    mounts = [
        ("/workspace", project, True),
        ("/data", _sub_path(root, spec.data, project), True),
        (SCRIPT, _sub_path(root, spec.script, project), True),
        ("/output", _sub_path(root, spec.output, project), False),
    ]
    return _manifest(
        job_name(spec.job_id),
        {"fjo.dev/job": spec.job_id},
        spec.project_id,
        mounts,
        [SCRIPT],
        "/output",
        spec.limits,
        settings,
    )


def check_manifest(spec: CheckSpec, settings: JobRunnerSettings, root: Path) -> dict[str, Any]:
    """The Job that runs the airlock's check ``spec``: the same pod as a job's, under the same
    NetworkPolicy, with the check's own mounts (pure, like ``job_manifest``)."""
    project = spec.project_id
    mounts = [
        ("/acro", _sub_path(root, spec.check, project), True),
        (spec.source_mount, _sub_path(root, spec.source, project), True),
        ("/result", _sub_path(root, spec.result, project), False),
    ]
    return _manifest(
        check_name(spec.check_id),
        {"fjo.dev/check": spec.check_id},
        project,
        mounts,
        list(CHECK_ARGS),
        "/result",
        spec.limits,
        settings,
    )


def _manifest(
    name: str,
    run_label: dict[str, str],
    project_id: str,
    mounts: list[tuple[str, str, bool]],
    argv: list[str],
    working_dir: str,
    limits: SandboxLimits,
    settings: JobRunnerSettings,
) -> dict[str, Any]:
    volume_mounts: list[dict[str, Any]] = [
        {"name": "workspaces", "mountPath": dest, "subPath": sub, "readOnly": read_only}
        for dest, sub, read_only in mounts
    ]
    volume_mounts.append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 - an emptyDir
    memory = f"{limits.memory_mb}Mi"
    storage = f"{limits.file_mb + _TMP_MB}Mi"
    resources = {
        "requests": {"cpu": settings.cpu, "memory": memory, "ephemeral-storage": storage},
        "limits": {"cpu": settings.cpu, "memory": memory, "ephemeral-storage": storage},
    }
    container = {
        "name": CONTAINER,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [*rlimits(limits, nproc=False), settings.python, "-I", *argv],
        "workingDir": working_dir,
        "env": [{"name": k, "value": v} for k, v in sorted(job_environment().items())],
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": volume_mounts,
    }
    labels = {**JOB_LABELS, **run_label}
    pod = {
        "serviceAccountName": settings.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        # No fsGroup: the kubelet would re-own the whole workspaces volume for it.
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
        "volumes": [
            {
                "name": "workspaces",
                "persistentVolumeClaim": {"claimName": settings.workspaces_claim},
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": f"{_TMP_MB}Mi"}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {"fjo.dev/project": project_id},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, math.ceil(limits.wall_s)),
            "ttlSecondsAfterFinished": settings.ttl_s,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _condition(job: dict[str, Any]) -> tuple[str, str | None] | None:
    """("Complete" | "Failed", reason) once the Job has ended."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"]), c.get("reason")
    return None


def _terminated(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == CONTAINER:
                terminated = (cs.get("state") or {}).get("terminated")
                if terminated:
                    return dict(terminated, pod=pod["metadata"]["name"])
    return None


@dataclass
class KubernetesJobRunner:
    api: KubeApi
    settings: JobRunnerSettings
    root: Path  # the workspaces volume, where access mounts it (extracts.directory)
    log_bytes: int = 1_000_000
    name: str = "kubernetes"
    sleep: Callable[[float], None] = field(default=time.sleep)

    def run(self, spec: JobSpec) -> JobRun:
        spec.output.mkdir(parents=True, exist_ok=True)
        return self._run(
            job_name(spec.job_id),
            spec.log,
            spec.limits.wall_s,
            lambda: job_manifest(spec, self.settings, self.root),
        )

    def run_check(self, spec: CheckSpec) -> JobRun:
        spec.result.mkdir(parents=True, exist_ok=True)
        return self._run(
            check_name(spec.check_id),
            spec.log,
            spec.limits.wall_s,
            lambda: check_manifest(spec, self.settings, self.root),
        )

    def _run(
        self, name: str, log: Path, wall_s: float, manifest: Callable[[], dict[str, Any]]
    ) -> JobRun:
        try:
            self.api.create_job(manifest())
        except (KubeApiError, ValueError) as exc:
            _log.error("job not created", extra={"error_type": type(exc).__name__})
            return SANDBOX_UNAVAILABLE
        try:
            return self._wait(name, log, wall_s)
        finally:
            self._delete(name)

    def _wait(self, name: str, log_path: Path, wall_s: float) -> JobRun:
        give_up = time.monotonic() + wall_s + _GRACE_S
        ended: tuple[str, str | None] | None = None
        while ended is None:
            try:
                ended = _condition(self.api.get_job(name))
            except KubeApiError as exc:  # a restart of the API server: read again
                _log.warning("job not read", extra={"error_type": type(exc).__name__})
            if ended is None:
                if time.monotonic() > give_up:
                    ended = ("Failed", "DeadlineExceeded")
                    break
                self.sleep(self.settings.poll_s)
        kind, reason = ended
        terminated = _terminated(self._pods(name))
        log = b""
        if terminated is not None:
            log = self._log(str(terminated["pod"]))
        log_path.write_bytes(log)
        exit_code = None if terminated is None else int(terminated.get("exitCode", 1))
        end = read_pod_end(
            exit_code,
            reason=None if terminated is None else terminated.get("reason"),
            deadline_exceeded=kind == "Failed" and reason == "DeadlineExceeded",
            log_tail=log[-4000:].decode("utf-8", "replace"),
        )
        return JobRun(end, exit_code)

    def _pods(self, name: str) -> list[dict[str, Any]]:
        try:
            return self.api.job_pods(name)
        except KubeApiError:
            return []

    def _log(self, pod: str) -> bytes:
        try:
            return self.api.pod_log(pod, CONTAINER, self.log_bytes)
        except KubeApiError:
            return b""

    def abandon(self, job_id: str) -> None:
        self._delete(job_name(job_id))

    def _delete(self, name: str) -> None:
        try:
            self.api.delete_job(name)
        except KubeApiError as exc:  # ttlSecondsAfterFinished removes it later
            _log.warning("job not deleted", extra={"error_type": type(exc).__name__})
