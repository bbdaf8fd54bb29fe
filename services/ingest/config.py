"""Settings of the ingest service (environment prefix ``FJO_INGEST_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import (
    Environment,
    IdentifiableBusSettings,
    ServiceSettings,
    TableRetentionSettings,
)

__all__ = ["AuthSettings", "IngestRetentionSettings", "IngestSettings", "LimitSettings"]


class AuthSettings(BaseModel):
    """Who may call ingest: the token issuer, our audience, and where the keys come from."""

    issuer: str = Field("https://dev.fjo.invalid", description="Expected `iss` of tokens.")
    audience: str = Field("fjo-ingest", description="Expected `aud` of tokens.")
    jwks_url: str | None = Field(
        None, description="JWKS of the organisation's OIDC issuer; required outside dev."
    )
    dev_key_file: Path = Field(
        Path("var/fjo/dev-issuer.pem"),
        description="Signing key of the local dev issuer (`fjo token`); used only in dev "
        "when no JWKS URL is set.",
    )
    partner_role: str = Field("partner", description="Role a token needs to push deliveries.")
    operator_roles: tuple[str, ...] = Field(
        ("operator", "admin"),
        description="Roles that may read the quarantine summary (any one of them).",
    )


class LimitSettings(BaseModel):
    """Limits that protect the service from one partner's oversized or runaway deliveries."""

    max_body_bytes: int = Field(
        8 * 1024**3, ge=1, description="Largest streamed delivery (NDJSON/CSV) in bytes."
    )
    max_line_bytes: int = Field(
        1024 * 1024,
        ge=64,
        description="Longest line (one record) in bytes, newline excluded (a CR of CRLF counts).",
    )
    max_batch_bytes: int = Field(
        8 * 1024 * 1024, ge=64, description="Largest JSON batch body in bytes."
    )
    max_batch_records: int = Field(10_000, ge=1, description="Most records in one JSON batch.")
    rate_per_s: float = Field(
        5.0, gt=0, description="Deliveries per second a partner may start (refill rate)."
    )
    rate_burst: int = Field(20, ge=1, description="Deliveries a partner may start at once.")
    max_receipt_errors: int = Field(
        1000,
        ge=0,
        description="Per-record errors kept in a receipt; the rest are counted (every rejected "
        "record is on the quarantine topic).",
    )


class IngestRetentionSettings(TableRetentionSettings):
    """How long ingest keeps its own rows (docs/operators.md, "Retention of the services'
    tables"). The accepted-record index has no period: it is what makes a re-sent record a
    duplicate, for as long as the record exists (an erasure removes its keys)."""

    deliveries_days: int = Field(
        400,
        ge=1,
        description="Days a delivery's receipt (its row and its per-record errors, which the "
        "quarantine summary counts) is kept after its last change: a year's reconciliation "
        "with the partner and a month to spare.",
    )


class IngestSettings(ServiceSettings):
    """Configuration of ingest; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_INGEST_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "ingest"
    database_url: str = "sqlite:///var/fjo/ingest.db"
    bus: IdentifiableBusSettings = Field(
        default_factory=IdentifiableBusSettings,
        description="The bus; on the embedded backend, identifiable topics in a log of their own.",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    retention: IngestRetentionSettings = Field(default_factory=IngestRetentionSettings)
    spool_dir: Path = Field(
        Path("var/fjo/ingest-spool"),
        description="Where a streamed delivery lands before it is processed (identifiable data: "
        "keep it on the service's own encrypted volume). Files are removed after processing.",
    )
    publish_batch_size: int = Field(
        1000, ge=1, description="Records validated, de-duplicated and published per bus flush."
    )
    max_concurrent_deliveries: int = Field(
        4,
        ge=1,
        description="Deliveries processed at once per process (one bus producer each); more "
        "get 503 with Retry-After.",
    )
    stale_after_s: float = Field(
        600.0,
        gt=0,
        description="A delivery still `processing` after this long (no progress) is presumed "
        "abandoned by a crashed process and may be retried with its Idempotency-Key.",
    )
    migrate_on_start: bool = Field(
        True, description="Run the Alembic migrations at start-up (off when a job runs them)."
    )

    @model_validator(mode="after")
    def _production_needs_a_real_issuer(self) -> Self:
        if self.environment is not Environment.DEV and not self.auth.jwks_url:
            raise ValueError("auth.jwks_url is required outside dev (the dev issuer is dev only)")
        return self
