"""NHS number check digits (modulus 11)."""

from __future__ import annotations

import pytest

from services.pseudonymise.domain import (
    is_valid_nhs_number,
    nhs_check_digit,
    normalise_nhs_number,
)


@pytest.mark.parametrize("number", ["9434765919", "943 476 5919", "943-476-5919", 4010232137])
def test_numbers_with_a_correct_check_digit_are_valid(number: str | int) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "number", ["9434765918", "943476591", "94347659190", "abcdefghij", "", None, "0000000000"]
)
def test_wrong_check_digits_wrong_lengths_and_repeated_digits_are_invalid(
    number: str | None,
) -> None:
    assert not is_valid_nhs_number(number)


def test_a_remainder_giving_ten_has_no_valid_check_digit() -> None:
    # 1*10 + 2*9 + ... is searched for a prefix whose check would be 10.
    prefix = next(f"{n:09d}" for n in range(100000000, 100001000)
                  if nhs_check_digit(f"{n:09d}") is None)  # fmt: skip
    assert all(not is_valid_nhs_number(prefix + str(d)) for d in range(10))


def test_normalising_removes_spaces_and_hyphens_only() -> None:
    assert normalise_nhs_number(" 943 476-5919 ") == "9434765919"
    assert normalise_nhs_number("943.476.5919") is None
