"""NHS numbers: normalisation and the modulus 11 check digit.

The first nine digits are weighted 10 down to 2 and summed; the check digit is
``11 - (sum mod 11)``, where 11 becomes 0 and 10 means the number is invalid.
"""

from __future__ import annotations

import re

__all__ = ["is_valid_nhs_number", "nhs_check_digit", "normalise_nhs_number"]

_SEPARATORS = re.compile(r"[\s-]+")
_TEN_DIGITS = re.compile(r"\d{10}")


def normalise_nhs_number(text: str | int | None) -> str | None:
    """Ten digits with spaces and hyphens removed, or None if it is not ten digits."""
    if text is None:
        return None
    compact = _SEPARATORS.sub("", str(text))
    return compact if _TEN_DIGITS.fullmatch(compact) else None


def nhs_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no digit is valid (remainder gives 10)."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("need exactly nine digits")
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(text: str | int | None) -> bool:
    """True if ``text`` is ten digits whose last passes modulus 11 and not all one digit."""
    number = normalise_nhs_number(text)
    if number is None or len(set(number)) == 1:
        return False
    return nhs_check_digit(number[:9]) == int(number[9])
