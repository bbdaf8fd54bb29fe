"""Every role on Kafka reaches the Strimzi listener the manifests describe: SASL_SSL with the
KafkaUsers' mechanism, as its own KafkaUser, with the password and the cluster CA mounted
where its settings read them; and those settings, as rendered, start in prod."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import SettingsConfigDict

import services.runtime.settings as settings_module
from contracts.services import Service
from deploy.manifests import roles as manifest_roles
from services.runtime.settings import Environment, KafkaSecurityProtocol, ServiceSettings
from tests.deploy.conftest import OVERLAYS


def _deployments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bus services' Deployments (the portal is on no bus: it has no Kafka settings)."""
    bus = {s.value for s in Service}
    return [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["labels"]["fjo.dev/service"] in bus
    ]


def _role_env(docs: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, str]:
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    return env


def _secret_files(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """File name in the secrets folder -> (Secret, key), for the items the pod projects."""
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    files = {}
    for source in volume["projected"]["sources"]:
        secret = source["secret"]
        for item in secret.get("items", []):
            files[item["path"]] = (secret["name"], item["key"])
    return files


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_role_on_kafka_authenticates_as_its_kafka_user_over_tls(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered_docs[overlay]
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    checked = 0
    for deployment in _deployments(docs):
        service = Service(deployment["metadata"]["labels"]["fjo.dev/service"])
        env = _role_env(docs, deployment)
        if env.get(manifest_roles.env_name(service, "bus", "backend")) != "kafka":
            continue

        def setting(name: str, service: Service = service, env: dict[str, str] = env) -> str:
            return env[manifest_roles.env_name(service, "bus", name)]

        assert setting("kafka_security_protocol") == "SASL_SSL"
        user = users[setting("kafka_sasl_username")]
        assert user["metadata"]["labels"]["fjo.dev/service"] == service.value
        assert user["spec"]["authentication"]["type"] == setting("kafka_sasl_mechanism").lower()
        files = _secret_files(deployment["spec"]["template"]["spec"])
        password_file = manifest_roles.env_name(service, "bus", "kafka_sasl_password")
        assert files[password_file] == (user["metadata"]["name"], "password")
        ca = Path(setting("kafka_ssl_cafile"))
        assert str(ca.parent) == manifest_roles.SECRETS_DIR
        assert files[ca.name] == (manifest_roles.KAFKA_CA_SECRET, "ca.crt")
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_jobs_get_no_kafka_credentials(
    overlay: str, rendered_docs: dict[str, list[dict[str, Any]]]
) -> None:
    jobs = [d for d in rendered_docs[overlay] if d["kind"] == "Job"]
    assert jobs
    for job in jobs:
        files = _secret_files(job["spec"]["template"]["spec"])
        assert not files, f"{job['metadata']['name']} mounts {sorted(files)}"


def test_the_rendered_kafka_settings_start_in_prod_with_the_mounted_files(
    rendered_docs: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered_docs["prod"]
    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path)
    seen = set()
    for deployment in _deployments(docs):
        service = Service(deployment["metadata"]["labels"]["fjo.dev/service"])
        prefix = f"FJO_{service.value.upper()}_"
        for name, value in _role_env(docs, deployment).items():
            if name.startswith(f"{prefix}BUS__"):
                monkeypatch.setenv(name, value.replace(manifest_roles.SECRETS_DIR, str(tmp_path)))
        for file_name in _secret_files(deployment["spec"]["template"]["spec"]):
            (tmp_path / file_name).write_text("5d41402abc4b2a76b9719d911017c592\n")

        class Settings(ServiceSettings):
            # The service's own class needs its other secrets; the bus part is the same.
            model_config = SettingsConfigDict(env_prefix=prefix, env_nested_delimiter="__")

        bus = Settings(environment=Environment.PROD).bus
        assert bus.kafka_security_protocol is KafkaSecurityProtocol.SASL_SSL
        config = bus.kafka_security().client_config()
        assert config["sasl_plain_password"] == "5d41402abc4b2a76b9719d911017c592"
        assert config["ssl_cafile"] == str(tmp_path / manifest_roles.KAFKA_CA_FILE)
        assert config["ssl_check_hostname"] is True
        seen.add(service)
    assert len(seen) == 4
