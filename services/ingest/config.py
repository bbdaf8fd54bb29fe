"""Settings of the ingest service (environment prefix ``FJO_INGEST_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import ServiceSettings

__all__ = ["IngestSettings"]


class IngestSettings(ServiceSettings):
    """Configuration of ingest; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_INGEST_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "ingest"
    database_url: str = "sqlite:///var/fjo/ingest.db"
