"""The re-encode Job of a linkage-key rotation (deploy/k8s/jobs/pseudonymise-reencode.yaml):
never applied with the overlays, its pods the pseudonymise worker's (its settings, key ring,
vault KEKs, postcode directory and Kafka user), one shard per index, and valid Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from deploy.schemas import KUBERNETES_VERSIONS
from fjo.cli import app
from tests.deploy.conftest import OVERLAYS, REPO_ROOT, load_yaml_docs
from tests.deploy.test_manifests import kubeconform_run

JOB_FILE = REPO_ROOT / "deploy" / "k8s" / "jobs" / "pseudonymise-reencode.yaml"
NAME = "fjo-pseudonymise-reencode"


def job_and_policy() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = {d["kind"]: d for d in load_yaml_docs(JOB_FILE)}
    assert set(docs) == {"Job", "NetworkPolicy"}
    return docs["Job"], docs["NetworkPolicy"]


def test_the_overlays_never_apply_it(rendered_docs: dict[str, list[dict[str, Any]]]) -> None:
    for overlay in OVERLAYS:
        names = {d["metadata"]["name"] for d in rendered_docs[overlay]}
        assert "fjo-pseudonymise-worker" in names and NAME not in names


def test_its_pods_are_the_workers_with_one_shard_each() -> None:
    job, policy = job_and_policy()
    (worker,) = [
        d
        for d in load_yaml_docs(REPO_ROOT / "deploy/k8s/base/services/pseudonymise.yaml")
        if d["kind"] == "Deployment"
    ]
    pod, worker_pod = job["spec"]["template"]["spec"], worker["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == worker_pod["serviceAccountName"]
    assert pod["volumes"] == worker_pod["volumes"]  # key ring, KEKs, Kafka, postcodes
    (c,), (w,) = pod["containers"], [x for x in worker_pod["containers"] if x["name"] == "fjo"]
    assert c["envFrom"] == w["envFrom"] and c["volumeMounts"] == w["volumeMounts"]
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert env["KEY_VERSION"] == {
        "configMapKeyRef": {"name": NAME, "key": "key-version"}  # the operator's, per rotation
    }
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    shards = c["args"][c["args"].index("--shards") + 1]
    assert spec["completions"] == spec["parallelism"] == int(shards)
    assert c["args"][c["args"].index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": NAME}

    # The command, with what Kubernetes substitutes, is one the CLI takes.
    args = [
        a.replace("$(KEY_VERSION)", "2").replace("$(JOB_COMPLETION_INDEX)", "3") for a in c["args"]
    ]
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output


def test_it_passes_offline_schema_validation(kubeconform: str, schema_root: Path) -> None:
    done = kubeconform_run(kubeconform, schema_root, JOB_FILE.read_text(), KUBERNETES_VERSIONS[0])
    assert done.returncode == 0 and "Invalid: 0, Errors: 0" in done.stdout, done.stdout
