"""Dates of birth: parsing, SAIL's week of birth, parts for comparison, placeholder detection.

Week of birth (WOB) is the Monday of the ISO week that holds the date of birth, held as a
date: the research side sees WOB, never the exact date. The linkage side compares year,
month and day separately, plus a day/month-swapped date when both are at most 12, because
transposed day and month is one of the commonest keying errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

__all__ = [
    "DobParts",
    "dob_parts",
    "is_placeholder_dob",
    "month_of",
    "parse_date",
    "swapped_day_month",
    "week_of_birth",
]

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?")
_UK = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def parse_date(value: str | date | datetime) -> date:
    """A date from a ``date``, ISO ``YYYY-MM-DD[...]``, UK ``DD/MM/YYYY`` or ``YYYYMMDD`` text.

    Raises ValueError for anything else; the message never repeats the value.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("date must be a date or text")
    text = value.strip()
    try:
        if m := _ISO.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _UK.fullmatch(text):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _COMPACT.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError("not a valid calendar date") from None
    raise ValueError("unrecognised date format")


def week_of_birth(dob: date) -> date:
    """The Monday of the ISO week holding ``dob`` (SAIL's WOB)."""
    return dob - timedelta(days=dob.weekday())


def month_of(value: date) -> str:
    """``YYYY-MM``: dates coarsened to the month (address from/to dates)."""
    return f"{value.year:04d}-{value.month:02d}"


def swapped_day_month(dob: date) -> date | None:
    """The date with day and month exchanged, when both are ≤12 and differ; else None."""
    if dob.day <= 12 and dob.month <= 12 and dob.day != dob.month:
        return date(dob.year, dob.day, dob.month)
    return None


def is_placeholder_dob(dob: date) -> bool:
    """True for dates recorded when the real one is unknown: 1 January of any year, or a
    sentinel year (≤1900 or ≥9000)."""
    return (dob.month == 1 and dob.day == 1) or dob.year <= 1900 or dob.year >= 9000


@dataclass(frozen=True, slots=True)
class DobParts:
    """A date of birth taken apart for encoding; ``placeholder`` dates are still encoded."""

    dob: date
    week_of_birth: date
    swapped: date | None
    placeholder: bool

    @property
    def year(self) -> int:
        return self.dob.year

    @property
    def month(self) -> int:
        return self.dob.month

    @property
    def day(self) -> int:
        return self.dob.day


def dob_parts(value: str | date | datetime) -> DobParts:
    """Parse ``value`` and take it apart (raises ValueError if it is not a date)."""
    dob = parse_date(value)
    return DobParts(
        dob=dob,
        week_of_birth=week_of_birth(dob),
        swapped=swapped_day_month(dob),
        placeholder=is_placeholder_dob(dob),
    )
