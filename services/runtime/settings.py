"""Settings base every service extends: environment, database, bus, telemetry, secrets.

Only settings classes read the environment (pydantic-settings). Secrets come from files
(Kubernetes secret mounts, ``secrets_dir``) or the environment, and a placeholder secret is
refused outside ``dev`` so a forgotten default can never reach production.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "SECRETS_DIR",
    "BusSettings",
    "Environment",
    "PlaceholderSecretError",
    "ServiceSettings",
    "TelemetrySettings",
    "is_placeholder",
    "read_secret_file",
]

# Values that mean "nobody set this": refused as secrets outside dev.
_PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "password",
        "dev",
        "development",
        "placeholder",
        "insecure",
        "test",
        "xxx",
        "todo",
    }
)
SECRETS_DIR = Path("/run/secrets/fjo")
"""Where Kubernetes mounts secrets, one file per setting named like its variable."""

DEV_SECRET_PREFIX = "dev-insecure-"  # noqa: S105 - the marker of a dev-only secret, not one


class Environment(StrEnum):
    """Where a process runs; decides how strict configuration checks are."""

    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class PlaceholderSecretError(ValueError):
    """A secret still holds a placeholder value in an environment that needs a real one."""


def is_placeholder(value: str) -> bool:
    """True for empty, well-known placeholder, or explicitly dev-only secret values."""
    v = value.strip().lower()
    return v in _PLACEHOLDERS or v.startswith(DEV_SECRET_PREFIX)


class BusSettings(BaseModel):
    """Which bus backend to use and how to reach it."""

    backend: Literal["embedded", "kafka"] = Field(
        "embedded", description="`embedded` (SQL log, single machine) or `kafka`."
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers."
    )
    embedded_url: str = Field(
        "sqlite:///var/fjo/bus.db", description="Database URL of the embedded log."
    )
    max_attempts: int = Field(3, ge=1, description="Handler attempts before dead-lettering.")


class TelemetrySettings(BaseModel):
    """OpenTelemetry export and logging."""

    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint, e.g. http://collector:4318; None disables export."
    )
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="Emit JSON log lines carrying trace ids.")


class ServiceSettings(BaseSettings):
    """Base for each service's settings; subclasses set ``env_prefix`` (e.g. ``FJO_INGEST_``)."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_",
        env_nested_delimiter="__",
        secrets_dir=None,
        extra="ignore",
        frozen=True,
        # Validation errors must not echo the input: it may hold secrets.
        hide_input_in_errors=True,
    )

    service_name: str = Field("fjo", description="Name reported in telemetry and logs.")
    environment: Environment = Field(Environment.DEV, description="dev, test or prod.")
    database_url: str = Field(
        "sqlite:///var/fjo/service.db", description="SQLAlchemy URL of this service's database."
    )
    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then secret files: mounted ones are read only
        where the folder exists (pydantic-settings warns about a missing one)."""
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        if SECRETS_DIR.is_dir():
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=SECRETS_DIR))
        return tuple(sources)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment is Environment.DEV:
            return self
        for name, value in self._secret_fields():
            if is_placeholder(value.get_secret_value()):
                raise PlaceholderSecretError(
                    f"setting {name!r} holds a placeholder secret; "
                    f"set a real one (environment={self.environment.value})"
                )
        return self

    def _secret_fields(self) -> list[tuple[str, SecretStr]]:
        found: list[tuple[str, SecretStr]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.append((name, value))
        return found


def read_secret_file(path: Path) -> bytes:
    """Raw bytes of a secret mounted as a file (trailing newline stripped)."""
    return path.read_bytes().rstrip(b"\r\n")
