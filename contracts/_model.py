"""The base every contract model shares: frozen, strict about unknown fields, quiet about inputs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ContractModel", "examples_of"]


class ContractModel(BaseModel):
    """Frozen and ``extra="forbid"``: a producer cannot publish a field the contract lacks.

    Readers on the bus stay tolerant by validating with ``extra="ignore"`` (``parse_data``,
    ``Envelope.from_bytes``), so adding an optional field never breaks an older consumer.
    ``hide_input_in_errors`` keeps values (possibly identifiers) out of ``str(ValidationError)``;
    ``ValidationError.errors()`` still carries them: log ``safe_errors(exc)`` instead.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        hide_input_in_errors=True,
        validate_default=False,
    )


def examples_of(model: type[BaseModel]) -> list[Any]:
    """The whole-model examples declared in ``model_config["json_schema_extra"]``."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    return list(examples) if isinstance(examples, list) else []
