"""A fake Kubernetes API server for the job runner's unit tests (httpx.MockTransport).

It serves the five calls ``KubeApi`` makes, checks the bearer token and the namespace, and
runs a created Job the way a kubelet would, as far as this machine can: the pod's container
command, working directory and environment, with its ``volumeMounts`` resolved against the
workspaces claim's folder (``subPath``, ``readOnly``), in the local bubblewrap sandbox (so
the Job's own mounts, read-only flags and rlimits are what the script meets), killed at
``activeDeadlineSeconds`` (the Job then fails with ``DeadlineExceeded``). A test can instead
script the container's end (``scripted_end``) for what no local run shows (``OOMKilled``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.access.workspace.sandbox import Bind, sandbox_command

TOKEN = "fake-service-account-token"


@dataclass
class FakeKube:
    namespace: str
    claim: str
    claim_root: Path  # what the workspaces claim holds
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    scripted_end: dict[str, Any] | None = None
    refuse_create: int | None = None  # an HTTP status for every create

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url="https://kubernetes.invalid", transport=httpx.MockTransport(self.handle)
        )

    # -- the API ------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized")
        parts = request.url.path.strip("/").split("/")
        jobs = ["apis", "batch", "v1", "namespaces", self.namespace, "jobs"]
        pods = ["api", "v1", "namespaces", self.namespace, "pods"]
        if parts == jobs and request.method == "POST":
            return self._create(json.loads(request.content))
        if parts[:-1] == jobs and request.method == "GET":
            job = self.jobs.get(parts[-1])
            return httpx.Response(200, json=job) if job else _status(404, "NotFound")
        if parts[:-1] == jobs and request.method == "DELETE":
            assert json.loads(request.content)["propagationPolicy"] == "Background"
            gone = self.jobs.pop(parts[-1], None)
            return httpx.Response(200, json={}) if gone else _status(404, "NotFound")
        if parts == pods and request.method == "GET":
            selector = request.url.params["labelSelector"]
            name = selector.removeprefix("job-name=")
            job = self.jobs.get(name)
            items = [job["_pod"]] if job else []
            return httpx.Response(200, json={"items": items})
        if parts[:-2] == pods and parts[-1] == "log" and request.method == "GET":
            assert request.url.params["container"] == "job"
            limit = int(request.url.params["limitBytes"])
            if parts[-2] not in self.logs:
                return _status(404, "NotFound")
            return httpx.Response(200, content=self.logs[parts[-2]][:limit])
        return _status(403, f"Forbidden: {request.method} {request.url.path}")

    def _create(self, job: dict[str, Any]) -> httpx.Response:
        if self.refuse_create is not None:
            return _status(self.refuse_create, "refused")
        name = job["metadata"]["name"]
        assert job["metadata"]["namespace"] == self.namespace
        if name in self.jobs:
            return _status(409, "AlreadyExists")
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        end, timed_out = self.scripted_end, False
        pod_name = f"{name}-abcde"
        if end is None:
            code, timed_out, log = self._run(job, pod, container)
            end = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
            self.logs[pod_name] = log
        else:
            self.logs[pod_name] = b""
        if timed_out:
            condition = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
            state: dict[str, Any] = {"terminated": {"exitCode": 137, "reason": "Error"}}
        elif end["exitCode"] == 0:
            condition = {"type": "Complete", "status": "True"}
            state = {"terminated": end}
        else:
            condition = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
            state = {"terminated": end}
        self.jobs[name] = {
            **job,
            "status": {"conditions": [condition]},
            "_pod": {
                "metadata": {"name": pod_name, "labels": {"job-name": name}},
                "status": {"containerStatuses": [{"name": container["name"], "state": state}]},
            },
        }
        return httpx.Response(201, json=job)

    # -- the kubelet ---------------------------------------------------------------------
    def _run(
        self, job: dict[str, Any], pod: dict[str, Any], container: dict[str, Any]
    ) -> tuple[int, bool, bytes]:
        volumes = {v["name"]: v for v in pod["volumes"]}
        binds = []
        for m in container["volumeMounts"]:
            volume = volumes[m["name"]]
            if "emptyDir" in volume:
                continue  # the sandbox's own private /tmp stands in
            assert volume["persistentVolumeClaim"]["claimName"] == self.claim
            source = self.claim_root / m["subPath"]
            writable = not m.get("readOnly", False)
            if writable and os.geteuid() == 0:  # as the local sandbox does for its job's uid
                os.chown(source, 65534, 65534)
            binds.append(Bind(source, m["mountPath"], writable=writable))
        command = list(container["command"])
        split = command.index("--")
        prlimit, argv = command[: split + 1], command[split + 1 :]
        env = {e["name"]: e["value"] for e in container["env"]}
        args = prlimit + sandbox_command(
            argv, binds, bwrap="bwrap", uid=65534, env=env, cwd=container["workingDir"]
        )
        deadline = job["spec"]["activeDeadlineSeconds"]
        try:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=deadline,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return 137, True, (exc.stdout or b"")
        code = done.returncode if done.returncode >= 0 else 128 - done.returncode
        return code, False, done.stdout + done.stderr


def _status(code: int, message: str) -> httpx.Response:
    return httpx.Response(
        code, json={"kind": "Status", "apiVersion": "v1", "code": code, "message": message}
    )
