"""Every overlay renders with kustomize, passes offline schema validation and stays secure."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.services import SERVICES, Service
from deploy.manifests import roles as manifest_roles
from deploy.manifests.portal import PORTAL_NAME, portal_secret_keys
from deploy.schemas import KUBERNETES_VERSIONS, schema_locations
from services.catalogue import PORTAL
from tests.deploy.conftest import OVERLAYS, settings_env_names

# Strimzi publishes its CRDs only inside its release archives (not in a registry package we
# can reach), so these two kinds are skipped by name, never with -ignore-missing-schemas:
# an unknown or misspelt built-in kind still fails. Their content is checked by
# test_generated_from_registry.py against the registry instead.
SKIPPED_KINDS = ("KafkaTopic", "KafkaUser")


def kubeconform_run(
    kubeconform: str, schema_root: Path, manifests: str, version: str
) -> subprocess.CompletedProcess[str]:
    args = [kubeconform, "-strict", "-summary", "-output", "text"]
    args += ["-kubernetes-version", version, "-skip", ",".join(SKIPPED_KINDS)]
    for location in schema_locations(schema_root):
        args += ["-schema-location", location]
    return subprocess.run(
        [*args, "-"], input=manifests, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_each_overlay_passes_offline_schema_validation(
    overlay: str, version: str, rendered: dict[str, str], kubeconform: str, schema_root: Path
) -> None:
    done = kubeconform_run(kubeconform, schema_root, rendered[overlay], version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Invalid: 0, Errors: 0" in done.stdout, done.stdout
    # KEDA objects were validated against KEDA's CRD schema, not skipped.
    skipped = int(done.stdout.rsplit("Skipped: ", 1)[1].split()[0])
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered[overlay]) if d]
    assert skipped == sum(kind in SKIPPED_KINDS for kind in kinds)


def test_schema_validation_catches_a_misspelt_field_and_a_wrong_type(
    kubeconform: str, schema_root: Path, rendered: dict[str, str]
) -> None:
    broken = rendered["prod"].replace(
        "readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true", 1
    )
    done = kubeconform_run(kubeconform, schema_root, broken, KUBERNETES_VERSIONS[0])
    assert done.returncode != 0 and "readOnlyRootFilesytem" in done.stdout
    bad_scaler = rendered["prod"].replace("maxReplicaCount: 12", "maxReplicaCount: twelve", 1)
    assert bad_scaler != rendered["prod"]
    done = kubeconform_run(kubeconform, schema_root, bad_scaler, KUBERNETES_VERSIONS[0])
    assert done.returncode != 0 and "ScaledObject" in done.stdout


def _pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for d in docs:
        if d["kind"] in {"Deployment", "Job"}:
            pods.append((d["metadata"]["name"], d["spec"]["template"]["spec"]))
        if d["kind"] == "CronJob":
            pods.append(
                (d["metadata"]["name"], d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
            )
    return pods


def _secret_items(spec: dict[str, Any]) -> set[str]:
    """The files a pod's projected secrets folder gets from sources of single items."""
    return {
        item["path"]
        for volume in spec.get("volumes", [])
        for source in volume.get("projected", {}).get("sources", [])
        for item in source.get("secret", {}).get("items", [])
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_pod_with_a_roles_settings_mounts_the_secret_files_they_name(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    """A Job or CronJob that loads a role's ConfigMap gets the files the role's pod has (the
    Kafka CA, a FilePath setting, must exist for the settings to load at all)."""
    pods = dict(_pod_specs(rendered_docs[overlay]))
    checked = 0
    for name, spec in pods.items():
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                role = source["configMapRef"]["name"]
                if role == name or role not in pods:
                    continue
                assert _secret_items(pods[role]) <= _secret_items(spec), name
                checked += 1
    assert checked >= len(SERVICES)  # every service's retention CronJob at least


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    pods = _pod_specs(rendered_docs[overlay])
    assert len(pods) >= 2 * len(SERVICES)
    for name, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(
                res["limits"]
            ), name
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert mounts[manifest_roles.SECRETS_DIR]["readOnly"] is True, name
            if not name.endswith(("-migrate", "-retention")):  # jobs: no probes
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_is_deny_all_with_an_allow_list_per_role(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    selected = [p["spec"]["podSelector"]["matchLabels"] for p in policies if p not in deny]
    for name, spec in _pod_specs(docs):
        del spec
        assert {"app.kubernetes.io/name": name} in selected, f"{name} has no allow-list"
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            assert rule.get("from"), f"{p['metadata']['name']} admits traffic from anywhere"
        egress_ports = {
            port["port"] for rule in p["spec"].get("egress", []) for port in rule["ports"]
        }
        # 6443: the Kubernetes API server, for access's API alone (it runs the jobs).
        allowed = {53, 5432, 9093, 4318, 443, 6443}
        if p["metadata"]["name"] == PORTAL_NAME:  # the APIs and the workers' probe ports
            allowed = {53, 5432, 4318, 443, manifest_roles.API_PORT, manifest_roles.PROBE_PORT}
            assert 9093 not in egress_ports  # no bus participant: no Kafka
        assert egress_ports <= allowed, p["metadata"]["name"]
        if 6443 in egress_ports:
            assert p["metadata"]["name"] == "fjo-access-api"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_monitoring_and_the_portal_reach_a_workers_probe_port(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    portal = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": PORTAL_NAME}}}
    deployments = {
        d["metadata"]["name"]: d for d in rendered_docs[overlay] if d["kind"] == "Deployment"
    }
    assert (
        deployments[PORTAL_NAME]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        == PORTAL_NAME
    )  # the label the workers' policies admit
    workers = apis = 0
    for p in (d for d in rendered_docs[overlay] if d["kind"] == "NetworkPolicy"):
        name = p["metadata"]["name"]
        for rule in p["spec"].get("ingress", []):
            if name.endswith("-worker"):
                workers += 1
                assert [port["port"] for port in rule["ports"]] == [manifest_roles.PROBE_PORT]
                assert rule["from"] == [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                        }
                    },
                    portal,
                ], name
            elif name.endswith("-api") and name != PORTAL_NAME:
                apis += 1  # the portal calls every API with the person's token
                assert portal in rule["from"], name
                assert [port["port"] for port in rule["ports"]] == [manifest_roles.API_PORT]
            else:
                assert portal not in rule["from"], name
    assert workers == 3  # pseudonymise, link, access
    assert apis == 3  # ingest, link, access
    (policy,) = [
        d
        for d in rendered_docs[overlay]
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == PORTAL_NAME
    ]
    # People reach the portal through the ingress controller only (and monitoring scrapes).
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    egress = {
        port["port"]: rule["to"] for rule in policy["spec"]["egress"] for port in rule["ports"]
    }
    assert {t["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for t in egress[9000]} == {
        "fjo-pseudonymise-worker",
        "fjo-link-worker",
        "fjo-access-worker",
    }
    assert {t["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for t in egress[8000]} == {
        "fjo-ingest-api",
        "fjo-link-api",
        "fjo-access-api",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    budgets = [
        d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"
    ]
    for d in docs:
        if d["kind"] == "Deployment":
            assert d["spec"]["selector"]["matchLabels"] in budgets, d["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_fjo_variable_is_a_setting_of_its_service(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    known: dict[Service | str, set[str]] = {s: settings_env_names(s) for s in SERVICES}
    known[PORTAL] = settings_env_names(PORTAL)
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    checked = 0
    for d in docs:
        if d["kind"] not in {"Deployment", "Job"}:
            continue
        label = d["metadata"]["labels"]["fjo.dev/service"]
        service = PORTAL if label == PORTAL else Service(label)
        for c in d["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in c.get("env", [])}
            for source in c.get("envFrom", []):
                names |= set(config_maps[source["configMapRef"]["name"]])
            for name in names:
                assert name in known[service], f"{d['metadata']['name']}: {name} is no setting"
                checked += 1
            if d["kind"] == "Deployment" and isinstance(service, Service):
                assert f"FJO_{service.value.upper()}_BUS__BACKEND" in names
    assert checked > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_files_are_named_after_the_settings_they_fill(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    if overlay == "prod":
        assert not secrets, "prod secrets come from the secret store, never from the repo"
        return
    for service in SERVICES:
        (secret,) = [s for n, s in secrets.items() if n.startswith(f"fjo-{service.value}-secrets")]
        assert sorted(secret["data"]) == list(manifest_roles.secret_keys(service)), service
    (portal,) = [s for n, s in secrets.items() if n.startswith(f"fjo-{PORTAL}-secrets")]
    assert sorted(portal["data"]) == list(portal_secret_keys())


def test_prod_runs_as_prod_and_dev_as_dev(rendered_docs: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, expected in (("prod", "prod"), ("dev", "dev")):
        (platform,) = [
            d
            for d in rendered_docs[overlay]
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("fjo-platform")
        ]
        assert platform["data"]["environment"] == expected
    assert "dev-insecure" not in yaml.safe_dump_all(rendered_docs["prod"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_takes_the_one_platform_environment_from_fjo_platform(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    """FJO_ENVIRONMENT, from the overlay's fjo-platform ConfigMap, in every container; no
    per-service variant (the settings refuse those) anywhere."""
    docs = rendered_docs[overlay]
    (platform,) = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("fjo-platform")
    ]
    checked = 0
    for d in docs:
        if d["kind"] not in {"Deployment", "Job"}:
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in c.get("env", [])}
            reference = env["FJO_ENVIRONMENT"]["valueFrom"]["configMapKeyRef"]
            assert reference == {"name": platform, "key": "environment"}, d["metadata"]["name"]
            checked += 1
    assert checked >= 10
    text = yaml.safe_dump_all(docs)
    assert not [s for s in SERVICES if f"FJO_{s.value.upper()}_ENVIRONMENT" in text]


def test_container_commands_parse_as_fjo_cli_commands(
    rendered_docs: dict[str, list[dict[str, Any]]],
) -> None:
    from typer.testing import CliRunner

    from fjo.cli import app

    runner = CliRunner()
    seen = set()
    for d in rendered_docs["prod"]:
        if d["kind"] not in {"Deployment", "Job"}:
            continue
        args = list(d["spec"]["template"]["spec"]["containers"][0]["args"])
        seen.add(tuple(args[:3]))
        # Unknown commands and options fail while parsing, before the eager --help exits.
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
    assert ("db", "upgrade", "ingest") in seen and ("serve", "ingest", "api") in seen
    assert runner.invoke(app, ["serve", "ingest", "api", "--no-such-option", "--help"]).exit_code
