"""Settings of the link service (environment prefix ``FJO_LINK_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Environment, ServiceSettings

__all__ = ["LinkSettings"]


class ReviewAuthSettings(BaseModel):
    """Who may call the review API: token issuer, audience, keys, and the reviewer role."""

    issuer: str = Field("https://dev.fjo.invalid", description="Expected `iss` of tokens.")
    audience: str = Field("fjo-link", description="Expected `aud` of tokens.")
    jwks_url: str | None = Field(None, description="JWKS of the OIDC issuer; required in prod.")
    dev_key_file: Path = Field(
        Path("var/fjo/dev-issuer.pem"), description="Signing key of the dev issuer (dev only)."
    )
    reviewer_role: str = Field("link-reviewer", description="Role needed to review links.")


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

    @model_validator(mode="after")
    def _key_outside_dev(self) -> Self:
        if self.environment is not Environment.DEV and self.alf_key_file is None:
            raise ValueError("alf_key_file must name the ALF key file outside dev")
        return self
