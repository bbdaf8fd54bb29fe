"""Date types that accept ISO text only: lax parsing would read "20150302" as a Unix time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "BirthDate",
    "IsoDate",
    "PastDate",
    "UtcDateTime",
    "today_utc",
]

EARLIEST_BIRTH_DATE = date(1880, 1, 1)
"""Earlier dates of birth are data errors (the spine holds people registered since the 1990s)."""

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


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
"""A calendar date written ``YYYY-MM-DD``."""

PastDate = Annotated[date, BeforeValidator(_iso_date_only), AfterValidator(_not_in_future)]
"""A date that has happened (received, issued, closed, death)."""

BirthDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    AfterValidator(_not_in_future),
    AfterValidator(_plausible_birth_date),
]
"""A date of birth: not in the future, not before 1880."""

UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime_only), AfterValidator(_to_utc)]
"""An instant with its timezone given, held in UTC."""
