"""Settings of the link service (environment prefix ``FJO_LINK_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import ServiceSettings

__all__ = ["LinkSettings"]


class LinkSettings(ServiceSettings):
    """Configuration of link; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_LINK_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "link"
    database_url: str = "sqlite:///var/fjo/link.db"
