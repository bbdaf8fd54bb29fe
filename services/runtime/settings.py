"""Settings base every service extends: environment, database, bus, telemetry, secrets.

Only settings classes read the environment (pydantic-settings). Secrets come from files
(Kubernetes secret mounts, ``secrets_dir``) or the environment, and a placeholder secret is
refused outside ``dev`` so a forgotten default can never reach production.

Where a process runs (dev, test or prod) is one platform-wide setting, ``FJO_ENVIRONMENT``,
that every service reads; unset, it is ``prod``. Only an explicit ``dev`` allows the dev token
issuer, generated keys and placeholder secrets. A per-service ``FJO_<SERVICE>_ENVIRONMENT`` or
the short ``FJO_ENV`` is refused rather than ignored, so no one believes they set it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from services.runtime.bus.security import KafkaSecurity

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "SECRETS_DIR",
    "BusSettings",
    "Environment",
    "IdentifiableBusSettings",
    "KafkaSecurityProtocol",
    "NestedSecretFiles",
    "PlaceholderSecretError",
    "PlatformSettings",
    "SaslMechanism",
    "ServiceSettings",
    "TableRetentionSettings",
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


ENVIRONMENT_VARIABLE = "FJO_ENVIRONMENT"
"""The one variable that says where every service of the platform runs."""


class PlaceholderSecretError(ValueError):
    """A secret still holds a placeholder value in an environment that needs a real one."""


def is_placeholder(value: str) -> bool:
    """True for empty, well-known placeholder, or explicitly dev-only secret values."""
    v = value.strip().lower()
    return v in _PLACEHOLDERS or v.startswith(DEV_SECRET_PREFIX)


class KafkaSecurityProtocol(StrEnum):
    """Kafka's ``security.protocol``: TLS or not, SASL or not."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """SASL mechanisms with a username and password (Strimzi's KafkaUsers use SCRAM-SHA-512)."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class BusSettings(BaseModel):
    """Which bus backend to use and how to reach it (and, for Kafka, how to authenticate).

    The SASL password is a secret: set it as a file named like its variable
    (``FJO_<SERVICE>_BUS__KAFKA_SASL_PASSWORD``) under the secrets folder, never in a ConfigMap.
    """

    # Validation errors must not echo the input: it may hold the SASL password.
    model_config = ConfigDict(hide_input_in_errors=True)

    backend: Literal["embedded", "kafka"] = Field(
        "embedded", description="`embedded` (SQL log, single machine) or `kafka`."
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers."
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        KafkaSecurityProtocol.PLAINTEXT,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT (dev only) or SASL_SSL.",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_*."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL username (Strimzi: the KafkaUser's name); required with SASL_*."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password; required with SASL_* (a secret file, not a variable)."
    )
    kafka_ssl_cafile: FilePath | None = Field(
        None, description="PEM CA bundle that signs the brokers' certificates (default: system)."
    )
    kafka_ssl_certfile: FilePath | None = Field(
        None, description="PEM client certificate for TLS client authentication (mTLS)."
    )
    kafka_ssl_keyfile: FilePath | None = Field(
        None, description="PEM private key of the client certificate (mTLS)."
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="Verify that the broker's certificate names the host (dev may not)."
    )
    embedded_url: str = Field(
        "sqlite:///var/fjo/bus.db", description="Database URL of the embedded log."
    )
    create_topics: bool = Field(
        True,
        description="Create the topics the service produces at start-up. Off where topics "
        "are declared elsewhere (Strimzi KafkaTopics): the services' KafkaUsers may not create.",
    )
    max_attempts: int = Field(3, ge=1, description="Handler attempts before dead-lettering.")
    max_batch: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Records a worker takes per poll: one transaction, one flush and one "
        "offset commit each, so larger batches cost less per record and add latency.",
    )

    @model_validator(mode="after")
    def _security_fits_together(self) -> Self:
        self.kafka_security()  # raises KafkaSecurityError (a ValueError) naming what to fix
        return self

    def embedded_identifiable(self) -> str | None:
        """The embedded log of identifiable topics: none, for a service that never touches
        them (its bus then refuses them)."""
        return None

    def kafka_security(self) -> KafkaSecurity:
        """The Kafka clients' protocol, credentials and TLS files."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol.value,
            sasl_mechanism=self.kafka_sasl_mechanism.value if self.kafka_sasl_mechanism else None,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
        )


class IdentifiableBusSettings(BusSettings):
    """The bus of a service that touches identifiable topics (ingest, pseudonymise): on the
    embedded backend those topics live in a log of their own, which no other service opens."""

    embedded_identifiable_url: str = Field(
        "sqlite:///var/fjo/identifiable-bus.db",
        description="Database URL of the embedded log of identifiable topics (records in "
        "clear); never the shared log's. Only ingest and pseudonymise have this setting.",
    )

    @model_validator(mode="after")
    def _identifiable_log_apart(self) -> Self:
        if self.backend == "embedded" and self.embedded_identifiable_url == self.embedded_url:
            raise ValueError(
                "bus.embedded_identifiable_url must not be bus.embedded_url: identifiable "
                "topics need a log that link and access do not open"
            )
        return self

    def embedded_identifiable(self) -> str | None:
        return self.embedded_identifiable_url


class TelemetrySettings(BaseModel):
    """OpenTelemetry export and logging."""

    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint, e.g. http://collector:4318; None disables export."
    )
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="Emit JSON log lines carrying trace ids.")


class PlatformSettings(BaseSettings):
    """What the whole platform shares: where it runs (``FJO_ENVIRONMENT``, default prod)."""

    model_config = SettingsConfigDict(env_prefix="FJO_", extra="ignore", frozen=True)

    environment: Environment = Field(
        Environment.PROD,
        description="dev, test or prod (FJO_ENVIRONMENT); unset means prod. Only dev trusts "
        "the dev token issuer, generates keys and accepts placeholder secrets.",
    )


class PlatformEnvironment(PydanticBaseSettingsSource):
    """Fills every service's ``environment`` from ``FJO_ENVIRONMENT`` and refuses the names
    that look as if they set it but would not (``FJO_<SERVICE>_ENVIRONMENT``, ``FJO_ENV``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for the one field

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix") or "")
        misleading = {f"{prefix}ENVIRONMENT", "FJO_ENV"} - {ENVIRONMENT_VARIABLE}
        # The environment's names are case-insensitive, as the settings' own are.
        found = sorted(k for k in os.environ if k.upper() in misleading)
        if found:
            raise SettingsError(
                f"{', '.join(found)} is not read: where fjo runs is one platform-wide "
                f"setting, set {ENVIRONMENT_VARIABLE} (dev, test or prod) instead"
            )
        platform = PlatformSettings()
        if "environment" not in platform.model_fields_set:
            return {}
        return {"environment": platform.environment}


class ServiceSettings(BaseSettings):
    """Base for each service's settings; subclasses set ``env_prefix`` (e.g. ``FJO_INGEST_``).

    ``environment`` comes from arguments, else the platform-wide ``FJO_ENVIRONMENT``, else
    it is prod."""

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
    environment: Environment = Field(
        Environment.PROD,
        description="dev, test or prod, from the platform-wide FJO_ENVIRONMENT; unset: prod.",
    )
    database_url: str = Field(
        "sqlite:///var/fjo/service.db", description="SQLAlchemy URL of this service's database."
    )
    bus: BusSettings = Field(default_factory=BusSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    docs_assets_dir: Path | None = Field(
        None,
        description="Swagger UI and ReDoc for the API's /docs and /redoc (scripts/assets.sh "
        "api-docs; the image has them); default the build step's cache.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the platform's environment, then the service's variables, then
        secret files (top-level and nested: ``bus.kafka_sasl_password``), from the folders
        that exist (the mount is optional, and so is a configured one in a test)."""
        # The last folder wins: the configured ones (``_secrets_dir``) over the mount.
        folders = [SECRETS_DIR] if SECRETS_DIR.is_dir() else []
        folders += [
            f for f in _folders(getattr(file_secret_settings, "secrets_dir", None)) if f.is_dir()
        ]
        return (
            init_settings,
            PlatformEnvironment(settings_cls),
            env_settings,
            dotenv_settings,
            NestedSecretFiles(file_secret_settings, secrets_dir=folders, secrets_dir_missing="ok"),
        )

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

    @model_validator(mode="after")
    def _refuse_weak_kafka_security(self) -> Self:
        """Credentials and records in clear, or a broker certificate for any host, are for a
        developer's machine only."""
        if self.environment is Environment.DEV:
            return self
        env = self.environment.value
        if self.bus.kafka_security_protocol is KafkaSecurityProtocol.SASL_PLAINTEXT:
            raise ValueError(
                "bus.kafka_security_protocol SASL_PLAINTEXT sends the SASL exchange and every "
                f"record unencrypted; it is allowed only in dev (environment={env}): use SASL_SSL"
            )
        if self.bus.kafka_security().uses_tls and not self.bus.kafka_ssl_check_hostname:
            raise ValueError(
                "bus.kafka_ssl_check_hostname is off: any certificate from the CA would do for "
                f"any broker; it is allowed only in dev (environment={env})"
            )
        return self

    def _secret_fields(self) -> list[tuple[str, SecretStr]]:
        """Every ``SecretStr`` setting that is set, top-level and one level down (``bus.…``)."""
        found: list[tuple[str, SecretStr]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.append((name, value))
            elif isinstance(value, BaseModel):
                for nested in type(value).model_fields:
                    nested_value = getattr(value, nested)
                    if isinstance(nested_value, SecretStr):
                        found.append((f"{name}.{nested}", nested_value))
        return found


def _folders(secrets_dir: Any) -> list[Path]:
    if secrets_dir is None:
        return []
    if isinstance(secrets_dir, str | Path):
        return [Path(secrets_dir)]
    return [Path(p) for p in secrets_dir]


class NestedSecretFiles(NestedSecretsSettingsSource):
    """pydantic-settings' own nested secrets source: one file per setting, named like its
    variable (``FJO_INGEST_DATABASE_URL``, ``FJO_INGEST_BUS__KAFKA_SASL_PASSWORD`` for a nested
    one, split on ``env_nested_delimiter``), the last folder winning, files whose real path
    leaves the folder never read. Each file is read as ``read_secret_file`` reads it: a
    binary one (a key the settings name by path, such as the ALF key) is no setting's value,
    so it is left out whole instead of failing the source's UTF-8 decode."""

    @classmethod
    def load_secrets(cls, path: Path) -> dict[str, str]:
        """Every text file under ``path`` by its name; binary files left out."""
        found: dict[str, str] = {}
        # The library's own walk (hidden entries, links out of the folder and cycles
        # skipped), which its size check shares.
        for entry in cls._iter_secret_files(path):
            try:
                found[str(entry.relative_to(path))] = (
                    read_secret_file(entry).decode("utf-8").strip()
                )
            except UnicodeDecodeError:
                continue
        return found


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret mounted as a file: a text secret loses its trailing newline
    (editors and ``echo`` add one); a binary one is returned whole, since its last random
    byte may be 0x0a or 0x0d (stripping those silently shortened one key in 128)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
        return data
    return data.rstrip(b"\r\n")


class TableRetentionSettings(BaseModel):
    """How ``fjo retention run --service <name>`` deletes (``services.runtime.retention``);
    each service adds the periods of its own tables."""

    batch_size: int = Field(
        1000, ge=1, le=100_000, description="Rows deleted per transaction by the retention job."
    )
