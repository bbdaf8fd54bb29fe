"""The modulus-11 check on NHS numbers is a pure helper that never raises."""

from __future__ import annotations

import pytest

from contracts.records import nhs_number_is_valid


@pytest.mark.parametrize("number", ["9434765919", "4010232137", "9999999999"])
def test_numbers_whose_last_digit_is_the_modulus_11_check_digit_are_valid(number: str) -> None:
    assert nhs_number_is_valid(number)


@pytest.mark.parametrize("number", ["9434765910", "4010232138"])
def test_a_wrong_check_digit_is_invalid(number: str) -> None:
    assert not nhs_number_is_valid(number)


def test_a_number_whose_check_digit_would_be_ten_is_invalid() -> None:
    # 1*10 + 1*2 = 12, remainder 1: the check digit would be 11 - 1 = 10, which no number has.
    number = "1000000010"
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    assert 11 - total % 11 == 10
    assert not nhs_number_is_valid(number)


@pytest.mark.parametrize(
    "garbage", ["", "943476591", "94347659190", "943 476 5919", "943476591X", "٩٤٣٤٧٦٥٩١٩"]
)
def test_anything_but_ten_ascii_digits_is_invalid_rather_than_an_error(garbage: str) -> None:
    assert not nhs_number_is_valid(garbage)
