"""Dates at the approved precision and banded match probabilities, with worked examples."""

from __future__ import annotations

from datetime import date

import pytest

from services.access.domain.generalisation import (
    DatePrecision,
    band_match_probability,
    coarsen_date,
)


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        (DatePrecision.WEEK, date(2019, 8, 12)),  # the Monday
        (DatePrecision.MONTH, date(2019, 8, 1)),
        (DatePrecision.QUARTER, date(2019, 7, 1)),
        (DatePrecision.YEAR, date(2019, 1, 1)),
    ],
)
def test_a_date_becomes_the_first_day_of_its_period(
    precision: DatePrecision, expected: date
) -> None:
    assert coarsen_date(date(2019, 8, 15), precision) == expected
    assert coarsen_date(None, precision) is None


def test_a_monday_is_its_own_week_and_a_quarter_starts_in_its_first_month() -> None:
    assert coarsen_date(date(2019, 8, 12), DatePrecision.WEEK) == date(2019, 8, 12)
    assert coarsen_date(date(2019, 12, 31), DatePrecision.QUARTER) == date(2019, 10, 1)


@pytest.mark.parametrize(
    ("probability", "band"),
    [
        (0.0, 0.0),
        (0.431907, 0.0),
        (0.5, 0.5),
        (0.899999, 0.8),
        (0.9, 0.9),  # SAIL's usual threshold stays an edge: >= 0.9 selects what it did
        (0.973214, 0.95),
        (0.990001, 0.99),
        (1.0, 0.99),
        (-0.1, 0.0),
        (None, None),
    ],
)
def test_a_match_probability_is_given_as_its_bands_lower_edge(
    probability: float | None, band: float | None
) -> None:
    assert band_match_probability(probability) == band
