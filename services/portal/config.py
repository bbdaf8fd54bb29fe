"""Settings of the portal (environment prefix ``FJO_PORTAL_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Environment, ServiceSettings

__all__ = ["ApiUrls", "OidcSettings", "PortalSettings"]


class OidcSettings(BaseModel):
    """The organisation's OpenID Connect issuer the portal signs people in with."""

    issuer: str = Field(
        "http://127.0.0.1:8090",
        description="Issuer URL; its /.well-known/openid-configuration is read at first use.",
    )
    discovery_url: str | None = Field(
        None,
        description="Where the discovery document is, if not under the issuer URL (the demo's "
        "dev issuer names itself https://dev.fjo.invalid and answers on 127.0.0.1).",
    )
    client_id: str = Field("fjo-portal", description="The portal's client id at the issuer.")
    client_secret: SecretStr | None = Field(
        None, description="Client secret, if the issuer gives the portal one (PKCE either way)."
    )
    scope: str = Field("openid profile", description="Scopes asked for at sign-in.")
    redirect_url: str | None = Field(
        None,
        description="The callback URL registered at the issuer (default: this request's "
        "/auth/callback).",
    )


class ApiUrls(BaseModel):
    """Where the services' APIs answer; the portal forwards the signed-in person's token."""

    access: str = Field("http://127.0.0.1:8004", description="Base URL of the access API.")
    link: str = Field("http://127.0.0.1:8003", description="Base URL of link's review API.")
    ingest: str = Field("http://127.0.0.1:8001", description="Base URL of the ingest API.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one API call.")
    check_timeout_s: float = Field(
        330.0,
        gt=0,
        description="Timeout of asking the airlock for an output (or a new revision): access "
        "runs ACRO in the sandbox within the call, for up to its WORKSPACE__CHECK_WALL_S (300).",
    )


class PortalSettings(ServiceSettings):
    """Configuration of the portal; nothing else in it reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_PORTAL_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "portal"
    database_url: str = Field(
        "sqlite:///var/fjo/portal.db", description="The portal's own store: sessions only."
    )
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    apis: ApiUrls = Field(default_factory=ApiUrls)
    assets_dir: Path | None = Field(
        None,
        description="govuk-frontend's dist folder (scripts/assets.sh path); default the "
        "build step's cache.",
    )
    session_ttl_s: int = Field(
        8 * 3600, ge=60, description="Longest a session lives (never past its token's expiry)."
    )
    cookie_secure: bool = Field(
        True, description="Session cookies only over HTTPS (browsers treat 127.0.0.1 as secure)."
    )
    migrate_on_start: bool = Field(True, description="Run the Alembic migrations at start-up.")
    status_workers: dict[str, str] = Field(
        default_factory=dict,
        description="Operator page: worker name -> the base URL of its probe port, whose "
        "/status gives the worker's consumer lag and dead letters.",
    )
    page_size: int = Field(
        50,
        ge=1,
        le=200,
        description="Items per page of a queue (panel, sign-off, output checking); the rest "
        "are behind its Next page link.",
    )
    status_roles: tuple[str, ...] = Field(
        ("operator", "admin"),
        description="Roles that see the workers' figures on the status page (as ingest's "
        "quarantine summary asks).",
    )

    @model_validator(mode="after")
    def _production_needs_tls(self) -> Self:
        if self.environment is Environment.PROD and not self.oidc.issuer.startswith("https://"):
            raise ValueError("oidc.issuer must be an https URL in prod")
        if self.environment is Environment.PROD and not self.cookie_secure:
            raise ValueError("cookie_secure cannot be off in prod")
        return self
