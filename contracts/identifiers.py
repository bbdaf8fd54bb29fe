"""Identifier markers on contract fields: pseudonymise and the leak test read them from here."""

from __future__ import annotations

import types
import typing
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic.config import JsonDict

__all__ = [
    "IDENTIFIER_KEY",
    "IDENTIFIER_KIND_KEY",
    "IdentifierKind",
    "identifier",
    "identifier_field_kinds",
    "identifier_fields",
    "models_in",
]

IDENTIFIER_KEY = "x-identifier"
IDENTIFIER_KIND_KEY = "x-identifier-kind"


class IdentifierKind(StrEnum):
    """What an identifying field holds, so pseudonymise knows how to treat it."""

    RECORD_ID = "record-id"
    """A partner's id for a record or a reference to one: replaced by a keyed record token."""
    REFERENCE = "reference"
    """Another reference that points at a real case or person (a court case number): dropped."""
    NAME = "name"
    DATE_OF_BIRTH = "date-of-birth"
    DATE_OF_DEATH = "date-of-death"
    NHS_NUMBER = "nhs-number"
    ADDRESS = "address"
    POSTCODE = "postcode"
    RAW = "raw"
    """Unparsed partner input (a quarantined line): may hold any of the above."""


def identifier(kind: IdentifierKind) -> JsonDict:
    """``json_schema_extra`` marking a field as identifying; it shows in the JSON Schema too."""
    return {IDENTIFIER_KEY: True, IDENTIFIER_KIND_KEY: kind.value}


def identifier_fields(model: type[BaseModel]) -> set[str]:
    """Dotted paths of the identifying fields of ``model``.

    A marked field is listed by its own name and not entered; an unmarked field holding
    models (directly, in a list or tuple, or optional) is entered, giving paths such as
    ``"outcomes.child_record_id"`` or ``"record.forename"``.
    """
    return set(identifier_field_kinds(model))


def identifier_field_kinds(model: type[BaseModel]) -> dict[str, IdentifierKind]:
    """Like ``identifier_fields``, with the ``IdentifierKind`` of each path."""
    found: dict[str, IdentifierKind] = {}
    _collect(model, "", found, frozenset())
    return found


def _collect(
    model: type[BaseModel], prefix: str, found: dict[str, IdentifierKind], seen: frozenset[type]
) -> None:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get(IDENTIFIER_KEY) is True:
            found[path] = IdentifierKind(str(extra[IDENTIFIER_KIND_KEY]))
            continue
        for nested in models_in(field.annotation):
            if nested not in seen:
                _collect(nested, f"{path}.", found, seen | {model})


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The contract models an annotation holds (``X | None``, ``list[X]``, ``Annotated``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None:
        return []
    if origin is typing.Annotated:
        return models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset, dict):
        out: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            out.extend(models_in(arg))
        return out
    return []
