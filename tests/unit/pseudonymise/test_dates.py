"""Week of birth, date-of-birth parts, day/month swaps and placeholder dates."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.pseudonymise.domain import (
    dob_parts,
    is_placeholder_dob,
    month_of,
    parse_date,
    swapped_day_month,
    week_of_birth,
)


@pytest.mark.parametrize(
    ("dob", "monday"),
    [
        (date(2016, 3, 4), date(2016, 2, 29)),  # a Friday
        (date(2016, 2, 29), date(2016, 2, 29)),  # a Monday is its own week
        (date(2016, 3, 6), date(2016, 2, 29)),  # a Sunday belongs to the week before
        (date(2021, 1, 1), date(2020, 12, 28)),  # ISO week crossing the year
    ],
)
def test_week_of_birth_is_the_monday_of_the_iso_week(dob: date, monday: date) -> None:
    assert week_of_birth(dob) == monday
    assert week_of_birth(dob).weekday() == 0


def test_dates_parse_from_iso_uk_compact_and_date_objects() -> None:
    expected = date(2015, 7, 9)
    for value in ("2015-07-09", "09/07/2015", "9.7.2015", "20150709", "2015-07-09T00:00:00",
                  expected, datetime(2015, 7, 9, 13, 5)):  # fmt: skip
        assert parse_date(value) == expected


def test_invalid_dates_raise_without_repeating_the_value() -> None:
    with pytest.raises(ValueError) as raised:
        parse_date("31/02/2015")
    assert "2015" not in str(raised.value)
    with pytest.raises(ValueError):
        parse_date("next tuesday")


def test_day_and_month_are_swapped_only_when_both_could_be_a_month() -> None:
    assert swapped_day_month(date(2015, 7, 9)) == date(2015, 9, 7)
    assert swapped_day_month(date(2015, 7, 13)) is None
    assert swapped_day_month(date(2015, 7, 7)) is None  # swapping changes nothing


def test_dob_parts_give_year_month_day_week_and_swap() -> None:
    parts = dob_parts("2015-07-09")
    assert (parts.year, parts.month, parts.day) == (2015, 7, 9)
    assert parts.week_of_birth == date(2015, 7, 6)
    assert parts.swapped == date(2015, 9, 7)
    assert not parts.placeholder


def test_first_of_january_is_flagged_as_a_placeholder_but_still_taken_apart() -> None:
    parts = dob_parts("01/01/2012")
    assert parts.placeholder
    assert parts.week_of_birth == date(2011, 12, 26)
    assert is_placeholder_dob(date(1900, 6, 15))
    assert not is_placeholder_dob(date(2012, 1, 2))


def test_dates_coarsen_to_the_month() -> None:
    assert month_of(date(2019, 11, 30)) == "2019-11"
