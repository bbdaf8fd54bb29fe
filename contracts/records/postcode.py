"""UK postcodes: shape check and normal ``CF10 1AA`` form, so one postcode gives one token."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = ["Postcode", "normalise_postcode"]

_COMPACT_POSTCODE = re.compile(r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}|GIR0AA)")


def normalise_postcode(value: str) -> str | None:
    """``" cf101aa "`` -> ``"CF10 1AA"``; ``None`` if ``value`` is not shaped like a postcode."""
    compact = "".join(value.split()).upper()
    if not compact.isascii() or not _COMPACT_POSTCODE.fullmatch(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def _postcode(value: object) -> str:
    normal = normalise_postcode(value) if isinstance(value, str) else None
    if normal is None:
        raise PydanticCustomError(
            "postcode_format", "postcode must be a full UK postcode such as CF10 1AA"
        )
    return normal


Postcode = Annotated[str, BeforeValidator(_postcode)]
"""A full UK postcode in normal form: outward code, one space, inward code."""
