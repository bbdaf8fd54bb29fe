"""Analysis jobs in Kubernetes: the Job access builds for each job (and for each airlock
check) passes the same offline schema validation as the generated manifests and is locked
down; the generated
NetworkPolicy denies the job pods everything; access's Role reaches Jobs and pod logs only.

None of this ran against a real cluster or API server (docs/workspace.md says what was not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.manifests.jobs import RUNNER_ROLE
from deploy.schemas import KUBERNETES_VERSIONS
from services.access.config import JobRunnerSettings
from services.access.workspace.files import WorkspacePaths
from services.access.workspace.kubernetes import JOB_NAME_LABEL, check_manifest, job_manifest
from services.access.workspace.runner import CheckSpec, JobSpec
from services.access.workspace.sandbox import SandboxLimits
from tests.deploy.conftest import OVERLAYS
from tests.deploy.test_manifests import kubeconform_run

LIMITS = SandboxLimits(
    cpu_s=120, memory_mb=3072, wall_s=600.0, processes=64, open_files=256, file_mb=512
)


def a_job(root: Path) -> dict[str, Any]:
    paths = WorkspacePaths(root, "3f0c9a8e-0000-4000-8000-000000000001")
    job_id = "0b7e2d1c-0000-4000-8000-000000000002"
    spec = JobSpec(
        job_id=job_id,
        project_id=paths.project_id,
        workspace=paths.base,
        data=paths.extract("e-1"),
        script=paths.job(job_id) / "script.py",
        output=paths.job_output(job_id),
        log=paths.job(job_id) / "log.txt",
        limits=LIMITS,
    )
    return job_manifest(spec, JobRunnerSettings(kind="kubernetes"), root)


def a_check(root: Path) -> dict[str, Any]:
    paths = WorkspacePaths(root, "3f0c9a8e-0000-4000-8000-000000000001")
    work = paths.output("0b7e2d1c-0000-4000-8000-000000000003", 1).with_name("r1.check")
    spec = CheckSpec(
        check_id="5d2c41f09a7e3b18",
        project_id=paths.project_id,
        check=work / "check",
        source=paths.extract("e-1") / "CHILD.parquet",
        result=work / "result",
        log=work / "log.txt",
        limits=LIMITS,
    )
    return check_manifest(spec, JobRunnerSettings(kind="kubernetes"), root)


@pytest.mark.parametrize("build", [a_job, a_check])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_job_access_builds_passes_offline_schema_validation(
    version: str, build: Any, kubeconform: str, schema_root: Path, tmp_path: Path
) -> None:
    text = yaml.safe_dump(build(tmp_path))
    done = kubeconform_run(kubeconform, schema_root, text, version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in done.stdout, done.stdout
    # And the validation would notice a field that is not in the schema.
    broken = text.replace("activeDeadlineSeconds", "activeDeadlineSecond")
    done = kubeconform_run(kubeconform, schema_root, broken, version)
    assert done.returncode != 0 and "activeDeadlineSecond" in done.stdout


def test_the_job_pod_is_locked_down(tmp_path: Path) -> None:
    job = a_job(tmp_path)
    assert_locked_down(job, "/output")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-3:] == [
        JobRunnerSettings().python,
        "-I",
        "/job/script.py",
    ]


def test_the_check_pod_is_locked_down_the_same_way(tmp_path: Path) -> None:
    check = a_check(tmp_path)
    assert_locked_down(check, "/result")
    assert check["spec"]["template"]["spec"]["containers"][0]["command"][-4:] == [
        JobRunnerSettings().python,
        "-I",
        "/acro/acro_runner.py",
        "/acro/request.json",
    ]


def assert_locked_down(job: dict[str, Any], writable: str) -> None:
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600 and spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == JOB_NAME_LABEL
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "fsGroup" not in pod["securityContext"]  # no re-owning of the workspaces volume
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "initContainers"):
        assert forbidden not in pod
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    limits = c["resources"]["limits"]
    assert limits == {"cpu": "1", "memory": "3072Mi", "ephemeral-storage": "576Mi"}
    assert c["resources"]["requests"] == limits
    # The same rlimits as the local sandbox (but RLIMIT_NPROC, node-wide per uid there).
    assert c["command"][:3] == ["prlimit", "--cpu=120:121", f"--as={3072 << 20}"]
    assert not [a for a in c["command"] if a.startswith("--nproc")]
    # One claim, only this project's subpaths; the output alone writable.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"workspaces", "tmp"}
    project = "3f0c9a8e-0000-4000-8000-000000000001"
    for m in c["volumeMounts"]:
        if m["name"] == "workspaces":
            assert m["subPath"].split("/")[0] == project
            assert m["readOnly"] is (m["mountPath"] != writable), m


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_job_pods_network_policy_denies_everything(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    (policy,) = [
        d
        for d in rendered_docs[overlay]
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"].get("matchLabels")
        == {"app.kubernetes.io/name": JOB_NAME_LABEL}
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []
    (account,) = [
        d
        for d in rendered_docs[overlay]
        if d["kind"] == "ServiceAccount"
        and d["metadata"]["name"] == JobRunnerSettings().service_account
    ]
    assert account["automountServiceAccountToken"] is False
    bound = [
        s["name"]
        for d in rendered_docs[overlay]
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        for s in d.get("subjects", [])
    ]
    assert JobRunnerSettings().service_account not in bound


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_access_may_only_run_jobs_and_read_their_pods_in_its_namespace(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["metadata"]["name"] == RUNNER_ROLE
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {r for _, r, _ in granted} == {"jobs", "pods", "pods/log"}
    assert ("batch", "jobs", "create") in granted and ("batch", "jobs", "delete") in granted
    assert not [g for g in granted if g[1] != "jobs" and g[2] not in ("get", "list")]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    namespace = role["metadata"]["namespace"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fjo-access-api", "namespace": namespace}
    ]
    (api,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "fjo-access-api"
    ]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    (config,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fjo-access-api"
    ]
    # The jobs run in access's own image, whatever the overlay made it.
    assert config["data"]["FJO_ACCESS_JOB_RUNNER__IMAGE"] == container["image"]
    expected = "local" if overlay == "dev" else "kubernetes"
    assert config["data"]["FJO_ACCESS_JOB_RUNNER__KIND"] == expected
