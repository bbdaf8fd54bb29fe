"""What a project gets instead of exact values that another project's extract would share.

Two projects' extracts of the same people carry no common pseudonym, but exact dates and a
six-digit match probability are content both receive unchanged, and they joined the two
extracts row for row (issue 11). Dates are therefore given at the precision the approval
pins (week, month, quarter or year: the first day of the period) and the match probability
in fixed bands (the band's lower edge), before k-anonymity; ``kanonymity.protect_table``
then makes sure no row's content is rare enough to be matched on its own.
"""

from __future__ import annotations

import bisect
from datetime import date, timedelta
from enum import StrEnum

__all__ = [
    "MATCH_PROBABILITY_BANDS",
    "DatePrecision",
    "band_match_probability",
    "coarsen_date",
]


class DatePrecision(StrEnum):
    """How precisely an extract gives dates; each value is the first day of its period."""

    WEEK = "week"  # the Monday, as SAIL gives week of birth
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MATCH_PROBABILITY_BANDS: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
"""Lower edges of the ALF_MTCH_PCT bands. The edges analysts filter on (0.9, SAIL's usual
threshold; 0.95; 0.99) are kept, so ``ALF_MTCH_PCT >= 0.9`` selects what it always did."""


def coarsen_date(value: date | None, precision: DatePrecision) -> date | None:
    """The first day of ``value``'s week, month, quarter or year (None stays None)."""
    if value is None:
        return None
    if precision is DatePrecision.WEEK:
        return value - timedelta(days=value.weekday())
    if precision is DatePrecision.MONTH:
        return value.replace(day=1)
    if precision is DatePrecision.QUARTER:
        return date(value.year, 3 * ((value.month - 1) // 3) + 1, 1)
    return date(value.year, 1, 1)


def band_match_probability(value: float | None) -> float | None:
    """The lower edge of ``value``'s band (None stays None; a value below 0 is band 0)."""
    if value is None:
        return None
    position = bisect.bisect_right(MATCH_PROBABILITY_BANDS, value) - 1
    return MATCH_PROBABILITY_BANDS[max(position, 0)]
