"""The job-runner port: one contract suite that both adapters pass, the local bubblewrap
runner for real and the Kubernetes runner against a fake API server whose kubelet runs the
created Job's own command and mounts in the same sandbox (tests/unit/access/fake_kube.py),
for analysis jobs and for the airlock's ACRO check; then what only the Kubernetes runner has
(its Job's end conditions, a refused API)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from services.access.config import JobRunnerSettings, WorkspaceSettings
from services.access.domain.airlock import PRESETS, CheckStatus, OutputKind
from services.access.domain.jobs import JobState
from services.access.workspace.checks import check_output
from services.access.workspace.files import WorkspacePaths
from services.access.workspace.kube_api import KubeApi
from services.access.workspace.kubernetes import (
    JOB_NAME_LABEL,
    KubernetesJobRunner,
    check_manifest,
    check_name,
    job_manifest,
    job_name,
)
from services.access.workspace.runner import (
    CheckSpec,
    JobRunner,
    JobSpec,
    LocalJobRunner,
)
from services.access.workspace.sandbox import SandboxLimits
from tests.unit.access.fake_kube import TOKEN, FakeKube

LIMITS = SandboxLimits(
    cpu_s=30, memory_mb=1024, wall_s=20.0, processes=64, open_files=256, file_mb=8
)
PROJECT = "p-1"
PROBE = (
    "import errno, json, os, socket\n"
    "seen = {}\n"
    "def attempt(name, fn):\n"
    "    try:\n"
    "        fn(); seen[name] = 'allowed'\n"
    "    except OSError as exc:\n"
    "        seen[name] = errno.errorcode.get(exc.errno or 0, type(exc).__name__)\n"
)
"""A probe script's start: ``attempt`` records what each try met (an errno's name)."""
OTHER = "p-2"


@dataclass
class Bench:
    runner: JobRunner
    root: Path
    kube: FakeKube | None = None

    def spec(self, script: str, job_id: str = "j-1", wall_s: float = LIMITS.wall_s) -> JobSpec:
        paths = WorkspacePaths(self.root, PROJECT)
        folder = paths.job(job_id)
        folder.mkdir(parents=True)
        (folder / "script.py").write_text(script)
        (folder / "script.py").chmod(0o666)
        limits = replace(LIMITS, wall_s=wall_s)
        return JobSpec(
            job_id=job_id,
            project_id=PROJECT,
            workspace=paths.base,
            data=paths.extract("e-1"),
            script=folder / "script.py",
            output=paths.job_output(job_id),
            log=folder / "log.txt",
            limits=limits,
        )

    def check_spec(self, runner_script: str, check_id: str = "c-1") -> CheckSpec:
        """A check run whose ``/acro/acro_runner.py`` is ``runner_script``, on the extract's
        CHILD.csv, laid out as ``workspace/checks.py`` lays out its runs."""
        paths = WorkspacePaths(self.root, PROJECT)
        work = paths.output("o-1", 1).with_name("r1.check")
        (work / "check").mkdir(parents=True)
        (work / "check" / "acro_runner.py").write_text(runner_script)
        (work / "check" / "request.json").write_text('{"writable": "by anyone"}')
        for f in (work / "check").iterdir():
            f.chmod(0o666)  # only the read-only mount can stop the check writing them
        return CheckSpec(
            check_id=check_id,
            project_id=PROJECT,
            check=work / "check",
            source=paths.extract("e-1") / "CHILD.csv",
            result=work / "result",
            log=work / "log.txt",
            limits=LIMITS,
        )


def _world(root: Path) -> None:
    data = WorkspacePaths(root, PROJECT).extract("e-1")
    data.mkdir(parents=True)
    # Twelve girls and three boys: a one-way table by sex has a cell under ten.
    (data / "CHILD.csv").write_text(
        "id,sex\n" + "".join(f"{i},{'M' if i < 3 else 'F'}\n" for i in range(15))
    )
    # Writable by anyone: only the read-only mount can stop the job writing it.
    (data / "CHILD.csv").chmod(0o666)
    foreign = WorkspacePaths(root, OTHER).extract("e-2")
    foreign.mkdir(parents=True)
    (foreign / "CHILD.csv").write_text("secret\n")


def kube_settings(namespace: str = "fjo-test") -> JobRunnerSettings:
    return JobRunnerSettings(
        kind="kubernetes", namespace=namespace, python=sys.executable, poll_s=0.01
    )


def kube_bench(tmp_path: Path) -> Bench:
    root = tmp_path / "workspaces"
    settings = kube_settings()
    fake = FakeKube(settings.namespace, settings.workspaces_claim, root)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    api = KubeApi(
        settings.api_url, settings.namespace, token, tmp_path / "ca.crt", client=fake.client()
    )
    return Bench(KubernetesJobRunner(api, settings, root), root, fake)


@dataclass
class KubeBench:
    runner: KubernetesJobRunner
    kube: FakeKube
    bench: Bench


@pytest.fixture
def k8s(tmp_path: Path) -> KubeBench:
    """The Kubernetes runner alone, on its fake API, with the world in place."""
    b = kube_bench(tmp_path)
    _world(b.root)
    assert isinstance(b.runner, KubernetesJobRunner) and b.kube is not None
    return KubeBench(b.runner, b.kube, b)


@pytest.fixture(params=["local", "kubernetes"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    if request.param == "local":
        b = Bench(LocalJobRunner(), tmp_path / "workspaces")
    else:
        b = kube_bench(tmp_path)
    _world(b.root)
    yield b


# -- the contract ------------------------------------------------------------------------


def test_a_job_reads_data_writes_output_and_leaves_its_log(bench: Bench) -> None:
    spec = bench.spec(
        "import csv, os\n"
        "rows = list(csv.DictReader(open('/data/CHILD.csv')))\n"
        "open('/output/n.txt', 'w').write(str(len(rows)))\n"
        "print('rows', len(rows), 'cwd', os.getcwd())\n"
    )
    run = bench.runner.run(spec)
    assert run.end.state is JobState.SUCCEEDED, (run, spec.log.read_text())
    assert run.exit_code == 0
    assert (spec.output / "n.txt").read_text() == "15"
    assert spec.log.read_text().strip() == "rows 15 cwd /output"


def test_the_data_and_the_workspace_are_read_only_and_nothing_else_is_there(
    bench: Bench,
) -> None:
    foreign = str(bench.root / OTHER / "extracts" / "e-2" / "CHILD.csv")
    probe = PROBE + (
        "attempt('write-data', lambda: open('/data/CHILD.csv', 'a').write('x'))\n"
        "attempt('write-workspace', lambda: open('/workspace/x', 'w').write('x'))\n"
        "attempt('write-script', lambda: open('/job/script.py', 'a').write('x'))\n"
        f"attempt('foreign', lambda: open({foreign!r}).read())\n"
        "attempt('socket', lambda: socket.create_connection(('1.1.1.1', 53), timeout=2))\n"
        "attempt('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
        "seen['workspace'] = sorted(os.listdir('/workspace'))\n"
        "seen['env'] = sorted(os.environ)\n"
        "json.dump(seen, open('/output/probe.json', 'w'))\n"
    )
    spec = bench.spec(probe)
    run = bench.runner.run(spec)
    assert run.end.state is JobState.SUCCEEDED, spec.log.read_text()
    seen: dict[str, Any] = json.loads((spec.output / "probe.json").read_text())
    # Read-only mounts (EROFS), not merely files the job's uid may not write.
    for attempt in ("write-data", "write-workspace", "write-script"):
        assert seen[attempt] == "EROFS", (attempt, seen)
    for attempt in ("foreign", "socket", "dns"):
        assert seen[attempt] != "allowed", (attempt, seen)
    assert seen["workspace"] == ["extracts", "jobs"]  # its own project's folder alone
    assert "KUBERNETES_SERVICE_HOST" not in seen["env"]
    assert not [k for k in seen["env"] if k.startswith("FJO_")]


def test_a_failing_script_ends_with_its_status(bench: Bench) -> None:
    spec = bench.spec("import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n")
    run = bench.runner.run(spec)
    assert (run.end.state, run.end.reason, run.exit_code) == (
        JobState.FAILED,
        "script-failed",
        3,
    )
    assert "bad input" in spec.log.read_text()


def test_the_wall_clock_ends_a_job_as_its_time_limit(bench: Bench) -> None:
    run = bench.runner.run(bench.spec("import time\ntime.sleep(60)\n", wall_s=1.0))
    assert (run.end.state, run.end.reason) == (JobState.FAILED, "time-limit")


def test_a_file_past_the_size_limit_ends_the_job_as_its_file_size_limit(bench: Bench) -> None:
    spec = bench.spec("open('/output/big', 'wb').write(b'x' * (9 << 20))\n")
    run = bench.runner.run(spec)
    assert (run.end.state, run.end.reason) == (JobState.FAILED, "file-size-limit"), (
        spec.log.read_text()
    )


def test_abandoning_a_job_that_is_not_there_is_harmless(bench: Bench) -> None:
    bench.runner.abandon("no-such-job")


def test_acros_check_runs_on_the_runner_and_flags_a_small_cell(bench: Bench) -> None:
    paths = WorkspacePaths(bench.root, PROJECT)
    folder = paths.output("o-1", 1)
    source = paths.extract("e-1") / "CHILD.csv"
    result = check_output(
        OutputKind.TABLE,
        {"index": ["sex"]},
        PRESETS["acro"],
        source,
        folder,
        WorkspaceSettings(),
        bench.runner,
    )
    assert result.error is None, result
    assert result.status is CheckStatus.FAIL, result  # three boys: under the threshold
    assert "MinimumThresholdCheck: fail - 1 cells" in result.summary, result.summary
    names = {f["name"] for f in result.files}
    assert "results.json" in names and any(n.endswith(".csv") for n in names), names
    assert not folder.with_name("r1.check").exists()  # the run's own folders are gone
    if bench.kube is not None:  # it ran as a Job, which is deleted after its end is read
        assert bench.kube.calls[0][0] == "POST" and bench.kube.jobs == {}


def test_a_check_that_fails_is_no_verdict(bench: Bench) -> None:
    spec = bench.check_spec("import sys\nsys.exit(5)\n")
    run = bench.runner.run_check(spec)
    assert (run.end.state, run.exit_code) == (JobState.FAILED, 5)


def test_a_checks_inputs_are_read_only_and_nothing_else_is_there(bench: Bench) -> None:
    foreign = str(bench.root / OTHER / "extracts" / "e-2" / "CHILD.csv")
    probe = PROBE + (
        "attempt('write-source', lambda: open('/source/CHILD.csv', 'a').write('x'))\n"
        "attempt('write-request', lambda: open('/acro/request.json', 'a').write('x'))\n"
        "attempt('write-runner', lambda: open('/acro/acro_runner.py', 'a').write('x'))\n"
        "attempt('new-in-check', lambda: open('/acro/x', 'w').write('x'))\n"
        f"attempt('foreign', lambda: open({foreign!r}).read())\n"
        "attempt('workspace', lambda: os.listdir('/workspace'))\n"
        "attempt('data', lambda: os.listdir('/data'))\n"
        "attempt('socket', lambda: socket.create_connection(('1.1.1.1', 53), timeout=2))\n"
        "attempt('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
        "seen['rows'] = len(open('/source/CHILD.csv').read().splitlines())\n"
        "seen['request'] = json.load(open('/acro/request.json'))\n"
        "seen['cwd'] = os.getcwd()\n"
        "seen['env'] = sorted(os.environ)\n"
        "json.dump(seen, open('check.json', 'w'))\n"
    )
    spec = bench.check_spec(probe)
    run = bench.runner.run_check(spec)
    assert run.end.state is JobState.SUCCEEDED, spec.log.read_text()
    seen: dict[str, Any] = json.loads((spec.result / "check.json").read_text())
    for attempt in ("write-source", "write-request", "write-runner", "new-in-check"):
        assert seen[attempt] == "EROFS", (attempt, seen)
    for attempt in ("foreign", "workspace", "data", "socket", "dns"):
        assert seen[attempt] != "allowed", (attempt, seen)
    assert (seen["rows"], seen["request"], seen["cwd"]) == (
        16,
        {"writable": "by anyone"},
        "/result",
    )
    assert "KUBERNETES_SERVICE_HOST" not in seen["env"]
    assert not [k for k in seen["env"] if k.startswith("FJO_")]


# -- the Kubernetes runner's own --------------------------------------------------------


def test_the_job_is_deleted_after_its_end_is_read(k8s: KubeBench) -> None:
    run = k8s.runner.run(k8s.bench.spec("print('hi')\n"))
    assert run.end.state is JobState.SUCCEEDED
    assert k8s.kube.jobs == {}
    methods = [m for m, _ in k8s.kube.calls]
    assert methods[0] == "POST" and methods[-1] == "DELETE"


@pytest.mark.parametrize(
    ("terminated", "reason"),
    [
        ({"exitCode": 137, "reason": "OOMKilled"}, "memory-limit"),
        ({"exitCode": 139, "reason": "Error"}, "crashed"),
        ({"exitCode": 1, "reason": "Error"}, "script-failed"),
    ],
)
def test_a_pods_end_reads_as_the_local_runners_ends(
    k8s: KubeBench, terminated: dict[str, Any], reason: str
) -> None:
    k8s.kube.scripted_end = terminated
    run = k8s.runner.run(k8s.bench.spec("print('never run')\n"))
    assert (run.end.state, run.end.reason, run.exit_code) == (
        JobState.FAILED,
        reason,
        terminated["exitCode"],
    )


@pytest.mark.parametrize("status", [401, 403, 422, 500])
def test_a_refused_or_failing_api_ends_the_job_unrun_without_raising(
    k8s: KubeBench, status: int
) -> None:
    k8s.kube.refuse_create = status
    run = k8s.runner.run(k8s.bench.spec("print('never run')\n"))
    assert (run.end.reason, run.exit_code) == ("sandbox-unavailable", None)


def test_a_wrong_token_is_refused_by_the_api(k8s: KubeBench) -> None:
    k8s.runner.api.token_file.write_text("stolen")
    run = k8s.runner.run(k8s.bench.spec("print('never run')\n"))
    assert run.end.reason == "sandbox-unavailable"
    assert k8s.kube.jobs == {} and k8s.kube.calls == [("POST", k8s.kube.calls[0][1])]


def test_a_job_mounts_only_its_own_projects_subpaths(k8s: KubeBench) -> None:
    b = k8s.bench
    spec = b.spec("pass\n")
    doc = job_manifest(spec, kube_settings(), b.root)
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {k: (m.get("subPath"), m.get("readOnly")) for k, m in mounts.items()} == {
        "/workspace": (PROJECT, True),
        "/data": (f"{PROJECT}/extracts/e-1", True),
        "/job/script.py": (f"{PROJECT}/jobs/j-1/script.py", True),
        "/output": (f"{PROJECT}/jobs/j-1/output", False),
        "/tmp": (None, None),
    }
    assert doc["metadata"]["name"] == job_name("j-1")
    assert doc["spec"]["backoffLimit"] == 0 and doc["spec"]["activeDeadlineSeconds"] == 20
    assert pod["automountServiceAccountToken"] is False
    assert container["resources"]["limits"]["memory"] == "1024Mi"
    # A spec whose data lies in another project's folder is never mounted.
    foreign = replace(spec, data=b.root / OTHER / "extracts" / "e-2")
    with pytest.raises(ValueError, match="own project"):
        job_manifest(foreign, kube_settings(), b.root)
    assert k8s.runner.run(foreign).end.reason == "sandbox-unavailable"


def test_a_check_mounts_only_its_own_projects_subpaths(k8s: KubeBench) -> None:
    b = k8s.bench
    spec = b.check_spec("pass\n")
    doc = check_manifest(spec, kube_settings(), b.root)
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    work = f"{PROJECT}/outputs/o-1/r1.check"
    assert {k: (m.get("subPath"), m.get("readOnly")) for k, m in mounts.items()} == {
        "/acro": (f"{work}/check", True),
        "/source/CHILD.csv": (f"{PROJECT}/extracts/e-1/CHILD.csv", True),
        "/result": (f"{work}/result", False),
        "/tmp": (None, None),
    }
    assert doc["metadata"]["name"] == check_name("c-1")
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == JOB_NAME_LABEL  # the deny-all policy's pods
    assert labels["fjo.dev/check"] == "c-1" and "fjo.dev/job" not in labels
    assert container["workingDir"] == "/result"
    assert container["command"][-3:] == ["-I", "/acro/acro_runner.py", "/acro/request.json"]
    # The same pod as a job's otherwise: security context, limits, deadline, no token.
    job = job_manifest(b.spec("pass\n"), kube_settings(), b.root)
    (job_container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"] == job_container["securityContext"]
    assert container["resources"] == job_container["resources"]
    assert pod["securityContext"] == job["spec"]["template"]["spec"]["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert doc["spec"]["backoffLimit"] == 0 and doc["spec"]["activeDeadlineSeconds"] == 20
    # A source in another project's folder is never mounted.
    foreign = replace(spec, source=b.root / OTHER / "extracts" / "e-2" / "CHILD.csv")
    with pytest.raises(ValueError, match="own project"):
        check_manifest(foreign, kube_settings(), b.root)
    assert k8s.runner.run_check(foreign).end.reason == "sandbox-unavailable"
    assert k8s.kube.jobs == {}
