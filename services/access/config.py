"""Settings of the access service (environment prefix ``FJO_ACCESS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import ServiceSettings

__all__ = ["AccessSettings"]


class AccessSettings(ServiceSettings):
    """Configuration of access; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_ACCESS_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "access"
    database_url: str = "sqlite:///var/fjo/access.db"
