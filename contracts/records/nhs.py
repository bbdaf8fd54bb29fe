"""NHS numbers: the shape contracts require, and the modulus-11 check pseudonymise flags."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = ["NhsNumber", "nhs_number_is_valid"]

_NHS_NUMBER = re.compile(r"([0-9]{3})[ -]?([0-9]{3})[ -]?([0-9]{4})")


def nhs_number_is_valid(value: str) -> bool:
    """True if ``value`` is 10 ASCII digits whose last is the modulus-11 check digit.

    Contracts do not call this: ingest keeps records whose check digit fails and
    pseudonymise flags them, because a mistyped NHS number still carries other fields.
    """
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    total = sum(
        int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


def _ten_digits(value: object) -> str:
    if isinstance(value, str):
        match = _NHS_NUMBER.fullmatch(value.strip())
        if match:
            return "".join(match.groups())
    raise PydanticCustomError(
        "nhs_number_format", "NHS number must be 10 digits (spaces allowed as 3 3 4)"
    )


NhsNumber = Annotated[str, BeforeValidator(_ten_digits)]
"""Ten digits, separators removed; check digit not enforced (see ``nhs_number_is_valid``)."""
