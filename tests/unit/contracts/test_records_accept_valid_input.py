"""Valid partner records parse, and values are held in one normal form."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts import examples_of
from contracts.records import (
    RECORD_MODELS,
    Address,
    ChildRecord,
    HearingRecord,
    OrderSought,
    PartnerRecord,
    Sex,
    SpinePersonRecord,
)
from tests.unit.contracts import examples


@pytest.mark.parametrize("model", RECORD_MODELS.values(), ids=lambda m: m.__name__)
def test_every_declared_example_of_a_record_parses(model: type[PartnerRecord]) -> None:
    declared = examples_of(model)
    assert declared, f"{model.__name__} declares no whole-record example"
    for data in declared:
        record = model.model_validate(data)
        assert record.record_type is RECORD_MODELS[record.record_type].record_type


def test_a_record_parses_from_json_text_as_well_as_from_a_dict() -> None:
    record = ChildRecord.model_validate(examples.child())
    assert ChildRecord.model_validate_json(record.model_dump_json()) == record


def test_postcodes_are_held_upper_case_with_one_space_before_the_inward_code() -> None:
    for given in ("cf101aa", " CF10 1AA ", "cf10  1aa", "SW1A1AA"):
        assert Address(postcode=given).postcode in {"CF10 1AA", "SW1A 1AA"}
    assert Address(postcode="sa11aa").postcode == "SA1 1AA"


def test_sex_is_accepted_as_a_sail_code_or_a_word_and_held_as_the_code() -> None:
    for given, expected in [
        (1, Sex.MALE),
        ("2", Sex.FEMALE),
        ("Female", Sex.FEMALE),
        ("M", Sex.MALE),
        ("not specified", Sex.NOT_SPECIFIED),
        ("UNKNOWN", Sex.UNKNOWN),
        (9, Sex.UNKNOWN),
    ]:
        assert ChildRecord.model_validate(examples.child(sex=given)).sex is expected
    assert ChildRecord.model_validate(examples.child(sex="f")).model_dump(mode="json")["sex"] == 2


def test_nhs_numbers_written_in_groups_are_held_as_ten_digits() -> None:
    for given in ("943 476 5919", "943-476-5919", "9434765919"):
        assert (
            ChildRecord.model_validate(examples.child(nhs_number=given)).nhs_number == "9434765919"
        )


def test_nhs_numbers_with_a_failing_check_digit_are_accepted_for_pseudonymise_to_flag() -> None:
    record = ChildRecord.model_validate(examples.child(nhs_number="9434765910"))
    assert record.nhs_number == "9434765910"


def test_extraction_times_with_any_offset_are_held_in_utc() -> None:
    record = ChildRecord.model_validate(examples.child(extracted_at="2024-05-01T10:30:00+01:00"))
    assert record.extracted_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert record.extracted_at.tzinfo is UTC


def test_optional_identifiers_may_be_missing_from_a_child_record() -> None:
    minimal = examples.child()
    for key in ("forename", "middle_names", "date_of_birth", "nhs_number", "address", "sex"):
        minimal.pop(key)
    record = ChildRecord.model_validate(minimal)
    assert record.nhs_number is None and record.date_of_birth is None


def test_surrounding_whitespace_is_stripped_from_text_fields() -> None:
    assert ChildRecord.model_validate(examples.child(surname="  Jones ")).surname == "Jones"


def test_order_sought_knows_its_law_type() -> None:
    assert OrderSought.CARE.law_type.value == "public"
    assert OrderSought.CHILD_ARRANGEMENTS.law_type.value == "private"


def test_a_listed_hearing_may_lie_in_the_future() -> None:
    record = HearingRecord.model_validate(
        examples.hearing(hearing_date="2099-01-04", end_date=None, status="listed", outcome=None)
    )
    assert record.hearing_date == date(2099, 1, 4)


def test_a_spine_person_carries_an_address_history_oldest_first() -> None:
    record = SpinePersonRecord.model_validate(examples.spine_person())
    assert [p.address.postcode for p in record.address_history] == ["SA1 1AA", "CF10 1AA"]


def test_records_are_frozen() -> None:
    record = ChildRecord.model_validate(examples.child())
    with pytest.raises(Exception, match="frozen"):
        record.surname = "Other"  # type: ignore[misc]
