"""Settings: environment and secret files feed them; placeholders never reach production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Environment, ServiceSettings, is_placeholder


class _Example(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FJO_EXAMPLE_", env_nested_delimiter="__", hide_input_in_errors=True
    )
    signing_key: SecretStr = Field(SecretStr("dev-insecure-signing-key"))


def test_nested_settings_come_from_the_environment_with_double_underscores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FJO_EXAMPLE_BUS__BACKEND", "kafka")
    monkeypatch.setenv("FJO_EXAMPLE_BUS__KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    settings = _Example(environment=Environment.DEV)
    assert settings.bus.backend == "kafka"
    assert settings.bus.kafka_bootstrap == "127.0.0.1:29092"


def test_a_placeholder_secret_is_accepted_in_dev() -> None:
    assert _Example(environment=Environment.DEV).signing_key.get_secret_value().startswith("dev-")


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PROD])
def test_a_placeholder_secret_is_refused_outside_dev_without_echoing_it(env: Environment) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _Example(environment=env)
    assert "signing_key" in str(excinfo.value)
    assert "dev-insecure-signing-key" not in str(excinfo.value)


def test_a_real_secret_from_a_mounted_file_is_accepted_in_prod(tmp_path: Path) -> None:
    # Secret files are named like the variable, prefix included, as pydantic-settings reads them.
    (tmp_path / "FJO_EXAMPLE_SIGNING_KEY").write_text("9f2c1e7a5b3d48e6a1c0f7b2d4e6a8c1\n")
    settings = _Example(_secrets_dir=tmp_path, environment=Environment.PROD)
    assert settings.signing_key.get_secret_value() == "9f2c1e7a5b3d48e6a1c0f7b2d4e6a8c1"


@pytest.mark.parametrize("value", ["", "changeme", "  Secret ", "dev-insecure-abc"])
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


def test_a_random_value_is_not_a_placeholder() -> None:
    assert not is_placeholder("b1946ac92492d2347c6235b4d2611184")


def test_secrets_mounted_in_the_platform_folder_are_read_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.runtime.settings as settings_module

    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path)
    (tmp_path / "FJO_EXAMPLE_SIGNING_KEY").write_text("4e1f0c9a7b2d4f6e8a0c2e4f6a8b0d2f")
    assert _Example(environment=Environment.PROD).signing_key.get_secret_value().startswith("4e1f")
    monkeypatch.setattr(settings_module, "SECRETS_DIR", tmp_path / "absent")
    with pytest.raises(ValidationError):  # no folder: back to the placeholder, refused
        _Example(environment=Environment.PROD)


def test_a_text_secret_loses_its_newline_and_a_binary_one_keeps_every_byte(tmp_path) -> None:
    from services.runtime.settings import read_secret_file

    text = tmp_path / "password"
    text.write_text("correct horse\n")
    binary = tmp_path / "alf.key"
    key = bytes(range(200, 231)) + b"\n"  # 32 random-looking bytes, the last one 0x0a
    binary.write_bytes(key)
    assert read_secret_file(text) == b"correct horse"
    assert read_secret_file(binary) == key


def test_a_binary_key_beside_the_secrets_is_left_out_whole_and_read_byte_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.runtime.settings import read_secret_file

    key = bytes(range(200, 231)) + b"\r\n"  # a key whose last random bytes look like a newline
    (tmp_path / "alf.key").write_bytes(key)
    (tmp_path / "FJO_EXAMPLE_SIGNING_KEY").write_bytes(b"\xff" + key)  # binary: no setting
    (tmp_path / "FJO_EXAMPLE_DATABASE_URL").write_text("sqlite:///from-a-secret.db\n")
    settings = _Example(_secrets_dir=tmp_path, environment=Environment.DEV)
    assert settings.database_url == "sqlite:///from-a-secret.db"
    assert settings.signing_key.get_secret_value() == "dev-insecure-signing-key"
    assert read_secret_file(tmp_path / "alf.key") == key


def test_a_kubernetes_secret_volume_is_read_through_its_links(tmp_path: Path) -> None:
    # What the kubelet mounts: the files in a timestamped folder, ..data linking to it, and
    # one link per key through ..data (hidden entries are not secrets themselves).
    stamped = tmp_path / "..2026_12_01_00_00_00.1"
    stamped.mkdir()
    (stamped / "FJO_EXAMPLE_SIGNING_KEY").write_text("5d0e9c2b7a4f41e8b3c6d9f0a2e4c6b8")
    (tmp_path / "..data").symlink_to(stamped.name)
    (tmp_path / "FJO_EXAMPLE_SIGNING_KEY").symlink_to("..data/FJO_EXAMPLE_SIGNING_KEY")
    settings = _Example(_secrets_dir=tmp_path, environment=Environment.PROD)
    assert settings.signing_key.get_secret_value().startswith("5d0e9c")


def test_a_configured_secrets_folder_wins_over_the_platform_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.runtime.settings as settings_module

    mount, configured = tmp_path / "mount", tmp_path / "configured"
    for folder, value in ((mount, "a" * 32), (configured, "b" * 32)):
        folder.mkdir()
        (folder / "FJO_EXAMPLE_SIGNING_KEY").write_text(value)
    monkeypatch.setattr(settings_module, "SECRETS_DIR", mount)
    chosen = _Example(_secrets_dir=configured, environment=Environment.PROD).signing_key
    assert chosen.get_secret_value() == "b" * 32
    assert _Example(environment=Environment.PROD).signing_key.get_secret_value() == "a" * 32
