"""Settings of the link service (environment prefix ``FJO_LINK_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Environment, ServiceSettings, TableRetentionSettings

__all__ = ["LinkRetentionSettings", "LinkSettings", "ReviewAuthSettings"]


class ReviewAuthSettings(BaseModel):
    """Who may call the review API: token issuer, audience, keys, and the reviewer role."""

    issuer: str = Field("https://dev.fjo.invalid", description="Expected `iss` of tokens.")
    audience: str = Field("fjo-link", description="Expected `aud` of tokens.")
    jwks_url: str | None = Field(None, description="JWKS of the OIDC issuer; required in prod.")
    dev_key_file: Path = Field(
        Path("var/fjo/dev-issuer.pem"), description="Signing key of the dev issuer (dev only)."
    )
    reviewer_role: str = Field("link-reviewer", description="Role needed to review links.")


class LinkRetentionSettings(TableRetentionSettings):
    """How long link keeps its own rows (docs/operators.md, "Retention of the services'
    tables"). The spine, incoming keys, results, spine log and history and the model history
    have no period: they are the linkage itself (an objection or erasure removes a person's),
    and a retired model version must stay known so it is never deployed again. Processed-
    message markers stay too: link reads a compacted topic, whose records can come back."""

    review_decided_days: int = Field(
        365,
        ge=1,
        description="Days a decided (accepted, rejected or superseded) possible match is kept "
        "after its decision, with its evidence and reviewer; until then a reviewer can reverse "
        "it. The decision itself lives on in the record's result and in link's audit.",
    )
    audit_days: int = Field(
        2557,
        ge=365,
        description="Days a row of link's audit (decisions on records, by record token) is "
        "kept: seven years, as long as an output built on a link may be questioned.",
    )


class LinkSettings(ServiceSettings):
    """Configuration of link; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_LINK_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "link"
    database_url: str = "sqlite:///var/fjo/link.db"
    worker_group: str = Field("link", description="Consumer group of the worker.")
    alf_key_file: Path | None = Field(
        None, description="Secret file holding the ALF key (32+ random bytes)."
    )
    dev_key_dir: Path = Field(
        Path("var/fjo/keys"), description="Dev only: where an ALF key is generated if unset."
    )
    input_topic: str = Field(
        "pseudonymise.linkage-keys.v1",
        description="Topic of linkage keys the worker consumes (the registry's; override "
        "only to replay from another topic).",
    )
    output_topic: str = Field(
        "link.results.v1",
        description="Topic link results are published to (the registry's; override only for "
        "a replay or an isolated test).",
    )
    snapshot_dir: Path | None = Field(
        Path("var/fjo/link-snapshots"),
        description="Where spine-index snapshots are written and read (memory-mapped): a "
        "replica starts from the newest and applies the spine log from there. Replicas on one "
        "machine that share the folder share the index in the page cache. None: no snapshots.",
    )
    model_file: Path | None = Field(
        None,
        description="A trained linkage model (JSON from `fjo link train`); without one the "
        "default model is used with u estimated from the spine as it grows.",
    )

    auth: ReviewAuthSettings = Field(default_factory=ReviewAuthSettings)
    retention: LinkRetentionSettings = Field(default_factory=LinkRetentionSettings)

    @model_validator(mode="after")
    def _key_outside_dev(self) -> Self:
        if self.environment is not Environment.DEV and self.alf_key_file is None:
            raise ValueError("alf_key_file must name the ALF key file outside dev")
        return self
