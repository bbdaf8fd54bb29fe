"""Settings of the pseudonymise service (environment prefix ``FJO_PSEUDONYMISE_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import ServiceSettings

__all__ = ["PseudonymiseSettings"]


class PseudonymiseSettings(ServiceSettings):
    """Configuration of pseudonymise; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_PSEUDONYMISE_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "pseudonymise"
    database_url: str = "sqlite:///var/fjo/pseudonymise.db"
