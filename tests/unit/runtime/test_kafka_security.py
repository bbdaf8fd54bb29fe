"""Kafka security settings: combinations that cannot work are refused at start-up, the
password is a secret (files, never echoed), and every kafka-python client gets the same
protocol, credentials and TLS files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict
from typer.testing import CliRunner

import services.runtime.bus.kafka as kafka_module
from services.runtime.bus.api import TopicSpec
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.bus.factory import bus_from_settings
from services.runtime.bus.kafka import KafkaBus
from services.runtime.bus.security import (
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaSecurity,
    KafkaSecurityError,
)
from services.runtime.settings import (
    BusSettings,
    Environment,
    KafkaSecurityProtocol,
    SaslMechanism,
    ServiceSettings,
)

PASSWORD = "4f0c9a7b2d4f6e8a0c2e4f6a8b0d2f1e"


class _Example(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FJO_EXAMPLE_", env_nested_delimiter="__", hide_input_in_errors=True
    )
    signing_key: SecretStr = Field(SecretStr("9f2c1e7a5b3d48e6a1c0f7b2d4e6a8c1"))


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n")
    return path


def scram(**over: Any) -> dict[str, Any]:
    return {
        "backend": "kafka",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "fjo-ingest",
        "kafka_sasl_password": PASSWORD,
        **over,
    }


# ------------------------------------------------------------------------ combinations


def test_the_default_is_plaintext_without_credentials() -> None:
    assert dict(BusSettings().kafka_security().client_config()) == {
        "security_protocol": "PLAINTEXT"
    }


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize(
    "missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"]
)
def test_a_sasl_protocol_without_its_mechanism_or_credentials_is_refused_naming_what_is_missing(
    protocol: str, missing: str
) -> None:
    values = scram(kafka_security_protocol=protocol)
    del values[missing]
    with pytest.raises(ValidationError) as excinfo:
        BusSettings(**values)
    message = str(excinfo.value)
    assert f"{protocol} authenticates with SASL and needs {missing}" in message
    assert PASSWORD not in message


def test_an_empty_sasl_password_counts_as_missing() -> None:
    with pytest.raises(ValidationError, match="needs kafka_sasl_password"):
        BusSettings(**scram(kafka_sasl_password=""))


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_credentials_on_a_protocol_without_sasl_are_refused_without_echoing_them(
    protocol: str,
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        BusSettings(
            kafka_security_protocol=protocol, kafka_sasl_username="u", kafka_sasl_password=PASSWORD
        )
    message = str(excinfo.value)
    assert f"kafka_security_protocol {protocol} does not authenticate with SASL" in message
    assert PASSWORD not in message


def test_a_mechanism_alone_on_plaintext_is_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism set, but"):
        BusSettings(kafka_sasl_mechanism="SCRAM-SHA-512")


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("setting", ["kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"])
def test_tls_files_on_a_protocol_without_tls_are_refused(
    protocol: str, setting: str, pem: Path
) -> None:
    values: dict[str, Any] = {"kafka_security_protocol": protocol, setting: pem}
    if protocol == "SASL_PLAINTEXT":
        values = scram(kafka_security_protocol=protocol, **{setting: pem})
    with pytest.raises(ValidationError, match=f"{setting} set, but .* does not use TLS"):
        BusSettings(**values)


def test_a_client_key_without_its_certificate_is_refused(pem: Path) -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_keyfile needs kafka_ssl_certfile"):
        BusSettings(kafka_security_protocol="SSL", kafka_ssl_keyfile=pem)


def test_a_tls_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_cafile"):
        BusSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "absent.crt")


@pytest.mark.parametrize(
    ("setting", "value"),
    [("kafka_security_protocol", "SASL_TLS"), ("kafka_sasl_mechanism", "GSSAPI")],
)
def test_unknown_protocols_and_mechanisms_are_refused(setting: str, value: str) -> None:
    with pytest.raises(ValidationError, match=setting):
        BusSettings(**scram(**{setting: value}))


def test_the_value_object_applies_the_same_rules_when_built_directly() -> None:
    with pytest.raises(KafkaSecurityError, match="needs kafka_sasl_password"):
        KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u")
    with pytest.raises(KafkaSecurityError, match="not one of"):
        KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_username="u",
            sasl_password=SecretStr(PASSWORD),
        )
    with pytest.raises(KafkaSecurityError, match="not one of"):
        KafkaSecurity(protocol="TLS")


def test_the_settings_enums_are_the_protocols_and_mechanisms_the_value_object_knows() -> None:
    assert tuple(p.value for p in KafkaSecurityProtocol) == SECURITY_PROTOCOLS
    assert tuple(m.value for m in SaslMechanism) == SASL_MECHANISMS


# ------------------------------------------------------------------ environment rules


def test_sasl_plaintext_is_accepted_in_dev() -> None:
    settings = _Example(
        environment=Environment.DEV, bus=scram(kafka_security_protocol="SASL_PLAINTEXT")
    )
    assert settings.bus.kafka_security().uses_sasl


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PROD])
def test_sasl_plaintext_is_refused_outside_dev(env: Environment) -> None:
    with pytest.raises(ValidationError, match=r"SASL_PLAINTEXT .* allowed only in dev"):
        _Example(environment=env, bus=scram(kafka_security_protocol="SASL_PLAINTEXT"))


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PROD])
def test_turning_off_the_hostname_check_is_refused_outside_dev(env: Environment) -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_check_hostname is off"):
        _Example(environment=env, bus=scram(kafka_ssl_check_hostname=False))
    dev = _Example(environment=Environment.DEV, bus=scram(kafka_ssl_check_hostname=False))
    assert dev.bus.kafka_security().client_config()["ssl_check_hostname"] is False


def test_sasl_ssl_with_a_real_password_is_accepted_in_prod(pem: Path) -> None:
    settings = _Example(environment=Environment.PROD, bus=scram(kafka_ssl_cafile=pem))
    assert settings.bus.kafka_security_protocol is KafkaSecurityProtocol.SASL_SSL


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PROD])
def test_a_placeholder_sasl_password_is_refused_outside_dev_without_echoing_it(
    env: Environment,
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _Example(environment=env, bus=scram(kafka_sasl_password="dev-insecure-kafka-password"))
    assert "bus.kafka_sasl_password" in str(excinfo.value)
    assert "dev-insecure-kafka-password" not in str(excinfo.value)


# ------------------------------------------------------------------------- the secret


def test_the_sasl_password_is_read_from_a_secret_file_named_like_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in scram().items():
        if name != "kafka_sasl_password":
            monkeypatch.setenv(f"FJO_EXAMPLE_BUS__{name.upper()}", value)
    (tmp_path / "FJO_EXAMPLE_BUS__KAFKA_SASL_PASSWORD").write_text(PASSWORD + "\n")
    settings = _Example(_secrets_dir=tmp_path, environment=Environment.PROD)
    password = settings.bus.kafka_sasl_password
    assert password is not None and password.get_secret_value() == PASSWORD
    assert settings.bus.backend == "kafka"  # the file joined the environment's bus settings


def test_the_platform_secrets_folder_fills_the_sasl_password_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.runtime.settings as settings_module

    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path)
    for name, value in scram().items():
        if name != "kafka_sasl_password":
            monkeypatch.setenv(f"FJO_EXAMPLE_BUS__{name.upper()}", value)
    (tmp_path / "FJO_EXAMPLE_BUS__KAFKA_SASL_PASSWORD").write_text(PASSWORD)
    (tmp_path / "unrelated.key").write_bytes(b"\xff\xfe not text, never read")
    from_file = _Example(environment=Environment.PROD).bus.kafka_sasl_password
    assert from_file is not None and from_file.get_secret_value() == PASSWORD
    monkeypatch.setenv("FJO_EXAMPLE_BUS__KAFKA_SASL_PASSWORD", "b1946ac92492d2347c6235b4d2611184")
    from_env = _Example(environment=Environment.PROD).bus.kafka_sasl_password
    assert from_env is not None and from_env.get_secret_value().startswith("b1946")


def test_a_secret_file_that_escapes_the_folder_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text(PASSWORD)
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "FJO_EXAMPLE_BUS__KAFKA_SASL_PASSWORD").symlink_to(outside)
    assert _Example(_secrets_dir=folder).bus.kafka_sasl_password is None


def test_the_password_is_never_in_a_repr_a_str_or_kafka_pythons_logged_configuration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _Example(bus=scram())
    config = settings.bus.kafka_security().client_config()
    assert config["sasl_plain_password"] == PASSWORD  # what kafka-python authenticates with
    for shown in (
        repr(settings),
        str(settings),
        repr(settings.bus),
        repr(settings.bus.kafka_security()),
        repr(config),
        "%s" % config,  # noqa: UP031 - how kafka-python logs its configuration
        settings.model_dump_json(),
    ):
        assert PASSWORD not in shown
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("kafka.admin.client").debug("configuration: %s", config)
    assert PASSWORD not in caplog.text


# -------------------------------------------------------------- what kafka-python gets


class _Recorder:
    """Stands in for a kafka-python client class: records the keyword arguments."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], kind: str) -> None:
        self._calls, self._kind = calls, kind

    def __call__(self, **kwargs: Any) -> Any:
        self._calls.append((self._kind, kwargs))
        return _FakeClient()


class _FakeClient:
    def subscribe(self, topics: list[str]) -> None:
        del topics

    def create_topics(self, request: Any, raise_errors: bool) -> dict[str, Any]:
        del request, raise_errors
        return {"topics": []}

    def wait_for_topics(self, names: list[str]) -> None:
        del names

    def flush(self, timeout: float | None = None) -> None:
        del timeout

    def close(self, **_: Any) -> None:
        pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for kind in ("KafkaProducer", "KafkaConsumer", "KafkaAdminClient"):
        monkeypatch.setattr(kafka_module, kind, _Recorder(calls, kind))
    return calls


def test_every_client_the_bus_creates_gets_the_protocol_credentials_and_tls_files(
    recorded: list[tuple[str, dict[str, Any]]], pem: Path
) -> None:
    settings = BusSettings(**scram(kafka_ssl_cafile=pem, kafka_bootstrap="k1:9093,k2:9093"))
    bus = bus_from_settings(settings)
    assert isinstance(bus, KafkaBus)
    bus.producer().close()
    bus.consumer("group", ["t.v1"]).close()
    bus.create_topics([TopicSpec("t.v1", 1)])
    bus.close()
    assert sorted(kind for kind, _ in recorded) == [
        "KafkaAdminClient",
        "KafkaConsumer",
        "KafkaProducer",
    ]
    expected = {
        "bootstrap_servers": ["k1:9093", "k2:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "fjo-ingest",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(pem),
        "ssl_check_hostname": True,
    }
    for kind, kwargs in recorded:
        assert {k: kwargs.get(k) for k in expected} == expected, kind
        assert "ssl_certfile" not in kwargs and "ssl_keyfile" not in kwargs, kind
    producer = dict(recorded)["KafkaProducer"]
    assert producer["acks"] == "all" and producer["enable_idempotence"] is True


def test_mutual_tls_hands_over_the_client_certificate_and_key(
    recorded: list[tuple[str, dict[str, Any]]], pem: Path, tmp_path: Path
) -> None:
    key = tmp_path / "user.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n...\n")
    settings = BusSettings(
        backend="kafka",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pem,
        kafka_ssl_certfile=pem,
        kafka_ssl_keyfile=key,
    )
    bus = bus_from_settings(settings)
    bus.producer().close()
    ((_, kwargs),) = recorded
    assert kwargs["security_protocol"] == "SSL"
    assert (kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (str(pem), str(key))
    assert not any(k.startswith("sasl_") for k in kwargs)


def test_the_plaintext_default_hands_over_no_tls_or_sasl_options(
    recorded: list[tuple[str, dict[str, Any]]],
) -> None:
    bus = bus_from_settings(BusSettings(backend="kafka"))
    bus.producer().close()
    ((_, kwargs),) = recorded
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert not any(k.startswith(("sasl_", "ssl_")) for k in kwargs)


def test_the_embedded_backend_ignores_the_kafka_security_settings(tmp_path: Path) -> None:
    settings = BusSettings(
        **{**scram(), "backend": "embedded"}, embedded_url=f"sqlite:///{tmp_path / 'b.db'}"
    )
    bus = bus_from_settings(settings)
    try:
        assert isinstance(bus, EmbeddedBus)
    finally:
        bus.close()


# -------------------------------------------------------------------- fjo topics create


def test_fjo_topics_create_passes_the_security_options_to_the_bus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pem: Path
) -> None:
    import services.runtime.bus.factory as factory
    from fjo.cli import app

    seen: list[BusSettings] = []

    class _Bus:
        def create_topics(self, specs: Any) -> None:
            del specs

        def close(self) -> None:
            pass

    def fake_bus(settings: BusSettings) -> _Bus:
        seen.append(settings)
        return _Bus()

    monkeypatch.setattr(factory, "bus_from_settings", fake_bus)
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    args = ["topics", "create", "--bootstrap", "k:9093", "--security-protocol", "SASL_SSL"]
    args += ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "fjo-admin"]
    args += ["--sasl-password-file", str(password_file), "--ssl-cafile", str(pem)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (settings,) = seen
    config = settings.kafka_security().client_config()
    assert config["sasl_plain_password"] == PASSWORD
    assert config["ssl_cafile"] == str(pem) and config["sasl_plain_username"] == "fjo-admin"


def test_fjo_topics_create_refuses_sasl_without_credentials() -> None:
    from fjo.cli import app

    result = CliRunner().invoke(app, ["topics", "create", "--security-protocol", "SASL_SSL"])
    assert result.exit_code == 2
    assert "needs kafka_sasl_mechanism" in result.output
