"""NHS numbers: normalisation and the modulus 11 check digit.

The first nine digits are weighted 10 down to 2 and summed; the check digit is
``11 - (sum mod 11)``, where 11 becomes 0 and 10 means the number is invalid.
"""

from __future__ import annotations

import re
from operator import mul

__all__ = ["is_valid_nhs_number", "nhs_check_digit", "normalise_nhs_number"]

_SEPARATORS = re.compile(r"[\s-]+")
_TEN_DIGITS = re.compile(r"\d{10}")
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def normalise_nhs_number(text: str | int | None) -> str | None:
    """Ten digits with spaces and hyphens removed, or None if it is not ten digits."""
    if text is None:
        return None
    if isinstance(text, str) and len(text) == 10 and text.isascii() and text.isdigit():
        return text  # already ten digits: the common case
    compact = _SEPARATORS.sub("", str(text))
    return compact if _TEN_DIGITS.fullmatch(compact) else None


def nhs_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no digit is valid (remainder gives 10)."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("need exactly nine digits")
    if first_nine.isascii():  # the digits' codes weighted, less 48 (b"0") times the weights' 54
        total = sum(map(mul, first_nine.encode(), _WEIGHTS)) - 48 * 54
    else:  # other scripts' decimal digits (\d matches them)
        total = sum(map(mul, map(int, first_nine), _WEIGHTS))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(text: str | int | None) -> bool:
    """True if ``text`` is ten digits whose last passes modulus 11 and not all one digit."""
    if isinstance(text, str) and len(text) == 10 and text.isascii() and text.isdigit():
        number: str | None = text  # already normalised (the split's case)
    else:
        number = normalise_nhs_number(text)
    if number is None or len(set(number)) == 1:
        return False
    return nhs_check_digit(number[:9]) == int(number[9])
