"""Date types that accept ISO text only: lax parsing would read "20150302" as a Unix time.

Every date and instant lies between ``EARLIEST_DATE`` and ``LATEST_DATE``: nothing a family
court or the spine records is older or further ahead, and the extremes a calendar allows
(year 1 or 9999 with a timezone offset) overflowed when converted or shifted downstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "EARLIEST_DATE",
    "LATEST_DATE",
    "BirthDate",
    "IsoDate",
    "PastDate",
    "UtcDateTime",
    "today_utc",
]

EARLIEST_BIRTH_DATE = date(1880, 1, 1)
"""Earlier dates of birth are data errors (the spine holds people registered since the 1990s)."""

EARLIEST_DATE = EARLIEST_BIRTH_DATE
"""No date in a record is older than the oldest plausible birth."""

LATEST_DATE = date(2100, 12, 31)
"""No date in a record is later (a hearing or an order's end may be listed ahead, not this far)."""

_EARLIEST_INSTANT = datetime.combine(EARLIEST_DATE, time.min, UTC)
_LATEST_INSTANT = datetime.combine(LATEST_DATE, time.max, UTC)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*")


def today_utc() -> date:
    """Today's date in UTC; the clock contracts compare against."""
    return datetime.now(UTC).date()


def _iso_date_only(value: object) -> object:
    if isinstance(value, datetime):
        raise PydanticCustomError("date_type", "expected a date, not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        return value.strip()
    raise PydanticCustomError("date_format", "date must be written YYYY-MM-DD")


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        "date_out_of_range",
        "date must be between {earliest} and {latest}",
        {"earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()},
    )


def _within_bounds(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _out_of_range()
    return value


@dataclass(frozen=True, slots=True)
class _BoundsInSchema:
    """Says the bounds in the generated JSON Schema too (``formatMinimum``/``formatMaximum``:
    not core JSON Schema, but the vocabulary validators such as ajv-formats read)."""

    earliest: str
    latest: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(formatMinimum=self.earliest, formatMaximum=self.latest)
        return schema


_DATE_IN_BOUNDS = _BoundsInSchema(EARLIEST_DATE.isoformat(), LATEST_DATE.isoformat())
_INSTANT_IN_BOUNDS = _BoundsInSchema(
    _EARLIEST_INSTANT.isoformat().replace("+00:00", "Z"),
    _LATEST_INSTANT.isoformat(timespec="seconds").replace("+00:00", "Z"),
)


def _not_in_future(value: date) -> date:
    # One day of grace: a partner's local date can be a day ahead of UTC's.
    if value > today_utc() + timedelta(days=1):
        raise PydanticCustomError("date_in_future", "date must not be in the future")
    return value


def _plausible_birth_date(value: date) -> date:
    if value < EARLIEST_BIRTH_DATE:
        raise PydanticCustomError(
            "date_too_early",
            "date of birth must not be before {earliest}",
            {"earliest": EARLIEST_BIRTH_DATE.isoformat()},
        )
    return value


def _iso_datetime_only(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value.strip()):
        return value.strip()
    raise PydanticCustomError(
        "datetime_format", "date-time must be ISO 8601 with a timezone, e.g. 2024-05-01T09:30:00Z"
    )


def _to_utc_within_bounds(value: datetime) -> datetime:
    # The local year first: converting year 1 or 9999 with an offset overflows.
    if not EARLIEST_DATE.year <= value.year <= LATEST_DATE.year:
        raise _out_of_range()
    utc = value.astimezone(UTC)
    if not _EARLIEST_INSTANT <= utc <= _LATEST_INSTANT:
        raise _out_of_range()
    return utc


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    AfterValidator(_within_bounds),
    _DATE_IN_BOUNDS,
]
"""A calendar date written ``YYYY-MM-DD``, between 1880-01-01 and 2100-12-31."""

PastDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    AfterValidator(_within_bounds),
    AfterValidator(_not_in_future),
    _DATE_IN_BOUNDS,
]
"""A date that has happened (received, issued, closed, death)."""

BirthDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    AfterValidator(_not_in_future),
    AfterValidator(_plausible_birth_date),
    _DATE_IN_BOUNDS,
]
"""A date of birth: not in the future, not before 1880 (so within the bounds)."""

UtcDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_datetime_only),
    AfterValidator(_to_utc_within_bounds),
    _INSTANT_IN_BOUNDS,
]
"""An instant with its timezone given, held in UTC, within the bounds' days (UTC)."""
