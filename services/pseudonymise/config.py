"""Settings of the pseudonymise service (environment prefix ``FJO_PSEUDONYMISE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import (
    Environment,
    IdentifiableBusSettings,
    ServiceSettings,
    TableRetentionSettings,
)

__all__ = ["DEFAULT_POSTCODE_LOOKUP", "PseudonymiseRetentionSettings", "PseudonymiseSettings"]

DEFAULT_POSTCODE_LOOKUP = Path(__file__).parent / "data" / "postcode_lookup.csv"


class PseudonymiseRetentionSettings(TableRetentionSettings):
    """How long pseudonymise keeps its own rows (docs/operators.md, "Retention of the
    services' tables"). The identifier vault has no period: it is kept until an erasure,
    never by age, because it is the only source for re-encoding after a key rotation."""

    markers_days: int = Field(
        30,
        ge=1,
        description="Days a processed-message marker is kept; at least the retention of "
        "`ingest.records.v1` and of `pseudonymise.dead-letters.v1` (14 days), while a record "
        "can still be redelivered or replayed (the job refuses a shorter period).",
    )
    reencode_progress_days: int = Field(
        90,
        ge=1,
        description="Days a re-encode's progress row is kept after its last page: a rerun "
        "after that starts the rotation's re-encode from the beginning (link takes a record "
        "re-encoded twice at the same key version once).",
    )


class PseudonymiseSettings(ServiceSettings):
    """Configuration of pseudonymise; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_PSEUDONYMISE_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "pseudonymise"
    database_url: str = "sqlite:///var/fjo/pseudonymise.db"
    bus: IdentifiableBusSettings = Field(
        default_factory=IdentifiableBusSettings,
        description="The bus; on the embedded backend, identifiable topics in a log of their own.",
    )
    worker_group: str = Field("pseudonymise", description="Consumer group of the worker.")
    retention: PseudonymiseRetentionSettings = Field(default_factory=PseudonymiseRetentionSettings)
    master_key_files: dict[int, Path] = Field(
        default_factory=dict,
        description="Master key file per key version (secret mounts), e.g. "
        '{"1": "/run/secrets/fjo/master-v1.key"}.',
    )
    current_key_version: int | None = Field(
        None, description="Version new outputs are made under; default the highest held."
    )
    retired_key_versions: tuple[int, ...] = Field(
        (), description="Versions kept for reference only: nothing is made under them."
    )
    record_token_key_version: int = Field(
        0,
        description="Key version record tokens are derived under (0: the first version, held "
        "or retired). Never rotated: a linkage-key rotation keeps every record's name.",
    )
    vault_kek_files: dict[str, Path] = Field(
        default_factory=dict,
        description="Key-encryption key file per KEK id (secret mounts) for the identifier "
        'vault, e.g. {"k1": "/run/secrets/fjo/vault-kek-k1.key"}.',
    )
    current_kek_id: str | None = Field(
        None, description="KEK id that wraps new data keys; default the highest id held."
    )
    dev_key_dir: Path = Field(
        Path("var/fjo/keys"),
        description="Dev only: where a master key is generated when none is configured.",
    )
    postcode_lookup_file: Path = Field(
        DEFAULT_POSTCODE_LOOKUP,
        description="The ONS Postcode Directory (ONSPD) or National Statistics Postcode Lookup "
        "(NSPL) CSV as ONS publishes it (docs/operators.md). The default is a synthetic lookup "
        "for dev, refused in any other environment.",
    )

    @model_validator(mode="after")
    def _keys_outside_dev(self) -> Self:
        if self.environment is not Environment.DEV and not self.master_key_files:
            raise ValueError("master_key_files must name the master key file(s) outside dev")
        if self.environment is not Environment.DEV and not self.vault_kek_files:
            raise ValueError("vault_kek_files must name the vault's KEK file(s) outside dev")
        return self

    @model_validator(mode="after")
    def _real_postcodes_outside_dev(self) -> Self:
        # The bundled lookup's postcodes are made up: outside dev every real address would
        # come out as "unknown" and with no area, silently. Its content is checked again when
        # it is loaded (bootstrap), so a copy under another name is refused too.
        if self.environment is not Environment.DEV and (
            self.postcode_lookup_file.resolve() == DEFAULT_POSTCODE_LOOKUP.resolve()
        ):
            raise ValueError(
                "postcode_lookup_file must name the ONS Postcode Directory or NSPL outside dev: "
                "the bundled lookup is synthetic (docs/operators.md, 'Postcode data')"
            )
        return self
