"""Invalid partner records are refused with the field's path and a precise error type."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.errors import safe_errors
from contracts.records import (
    AdultPartyRecord,
    CaseRecord,
    ChildRecord,
    HearingRecord,
    PartnerRecord,
    SpinePersonRecord,
)
from tests.unit.contracts import examples


def errors_of(
    model: type[PartnerRecord], data: dict[str, Any]
) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(err["loc"], err["type"]) for err in safe_errors(caught.value, keep_unknown_keys=True)]


def test_a_malformed_postcode_is_refused_at_address_postcode() -> None:
    data = examples.child(address={"line_1": "1 Heol y Frenhines", "postcode": "CF10 1A"})
    assert errors_of(ChildRecord, data) == [(("address", "postcode"), "postcode_format")]


def test_a_postcode_with_only_its_outward_code_is_refused() -> None:
    data = examples.adult(address={"postcode": "CF10"})
    assert errors_of(AdultPartyRecord, data) == [(("address", "postcode"), "postcode_format")]


def test_an_empty_address_is_refused() -> None:
    assert errors_of(ChildRecord, examples.child(address={})) == [(("address",), "address_empty")]


def test_a_date_of_birth_in_the_future_is_refused() -> None:
    data = examples.child(date_of_birth="2999-01-01")
    assert errors_of(ChildRecord, data) == [(("date_of_birth",), "date_in_future")]


def test_a_date_of_birth_before_1880_is_refused() -> None:
    data = examples.adult(date_of_birth="1850-01-01")
    assert errors_of(AdultPartyRecord, data) == [(("date_of_birth",), "date_too_early")]


def test_a_date_written_as_digits_only_is_refused_rather_than_read_as_a_unix_time() -> None:
    for given in ("20150302", 20150302, "02/03/2015"):
        data = examples.child(date_of_birth=given)
        assert errors_of(ChildRecord, data) == [(("date_of_birth",), "date_format")]


def test_an_impossible_calendar_date_is_refused() -> None:
    (loc, _type), *_ = errors_of(ChildRecord, examples.child(date_of_birth="2015-02-30"))
    assert loc == ("date_of_birth",)


def test_a_case_closed_before_it_was_received_is_refused_at_closed_date() -> None:
    data = examples.case(received_date="2019-03-04", closed_date="2019-03-01")
    assert errors_of(CaseRecord, data) == [(("closed_date",), "date_order")]


def test_a_final_hearing_before_the_first_is_refused() -> None:
    data = examples.case(first_hearing_date="2019-05-01", final_hearing_date="2019-04-01")
    assert errors_of(CaseRecord, data) == [(("final_hearing_date",), "date_order")]


def test_a_first_hearing_before_issue_is_refused() -> None:
    data = examples.case(issued_date="2019-03-01", first_hearing_date="2019-02-01")
    assert errors_of(CaseRecord, data) == [(("first_hearing_date",), "date_order")]


def test_an_unknown_order_is_refused_at_its_index_in_orders_sought() -> None:
    data = examples.case(orders_sought=["s31-care", "s99-banishment"])
    assert errors_of(CaseRecord, data) == [(("orders_sought", 1), "enum")]


def test_a_private_law_order_on_a_public_law_case_is_refused() -> None:
    data = examples.case(orders_sought=["s31-care", "s8-child-arrangements"])
    assert errors_of(CaseRecord, data) == [(("orders_sought",), "order_law_type_mismatch")]


def test_a_local_authority_applicant_needs_a_local_authority_code() -> None:
    data = examples.case(local_authority_code=None)
    assert errors_of(CaseRecord, data) == [(("local_authority_code",), "local_authority_required")]


def test_a_local_authority_code_that_is_not_an_ons_code_is_refused() -> None:
    data = examples.case(local_authority_code="Cardiff")
    assert errors_of(CaseRecord, data) == [(("local_authority_code",), "string_pattern_mismatch")]


def test_a_non_numeric_nhs_number_is_refused() -> None:
    for given in ("943476591X", "94347659", "94347659190", "nine", "٩٤٣٤٧٦٥٩١٩"):
        data = examples.child(nhs_number=given)
        assert errors_of(ChildRecord, data) == [(("nhs_number",), "nhs_number_format")]


def test_an_nhs_number_sent_as_a_json_number_is_refused() -> None:
    data = examples.child(nhs_number=9434765919)
    assert errors_of(ChildRecord, data) == [(("nhs_number",), "nhs_number_format")]


def test_an_unknown_sex_code_is_refused() -> None:
    for given in (3, "x", True):
        assert errors_of(ChildRecord, examples.child(sex=given)) == [(("sex",), "sex_code")]


def test_an_unknown_field_is_refused_by_name() -> None:
    data = examples.child(favourite_colour="blue")
    assert errors_of(ChildRecord, data) == [(("favourite_colour",), "extra_forbidden")]


def test_an_unknown_field_inside_an_address_is_refused_by_its_path() -> None:
    data = examples.child(address={"line_1": "1 Heol y Frenhines", "line_6": "x"})
    assert errors_of(ChildRecord, data) == [(("address", "line_6"), "extra_forbidden")]


def test_a_name_containing_digits_is_refused() -> None:
    assert errors_of(ChildRecord, examples.child(surname="J0nes")) == [
        (("surname",), "name_characters")
    ]


def test_an_extraction_time_without_a_timezone_is_refused() -> None:
    data = examples.child(extracted_at="2024-05-01T09:30:00")
    assert errors_of(ChildRecord, data) == [(("extracted_at",), "timezone_aware")]


def test_record_version_starts_at_one() -> None:
    data = examples.child(record_version=0)
    assert errors_of(ChildRecord, data) == [(("record_version",), "greater_than_equal")]


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (2**63, "less_than_equal"),  # overflowed the BIGINT column and failed the delivery
        (2**31, "less_than_equal"),  # would overflow link's and access's INTEGER columns
        (10**30, "less_than_equal"),
        ("9223372036854775808", "less_than_equal"),  # as CSV sends it
        (True, "int_type"),  # lax integers took true as version 1
        (False, "int_type"),
    ],
    ids=["2**63", "2**31", "10**30", "2**63-as-text", "true", "false"],
)
def test_record_version_fits_every_services_column_and_is_never_a_boolean(
    given: Any, error: str
) -> None:
    data = examples.child(record_version=given)
    assert errors_of(ChildRecord, data) == [(("record_version",), error)]


def test_the_largest_32_bit_record_version_is_a_version() -> None:
    assert ChildRecord.model_validate(examples.child(record_version=2**31 - 1)).record_version


@pytest.mark.parametrize(
    "given",
    [
        "9999-12-31T23:59:59-23:59",  # OverflowError converting to UTC, a 500 for the delivery
        "0001-01-01T00:00:00+23:59",
        "2101-01-01T00:00:00Z",
        "1879-12-31T23:59:59Z",
        "2100-12-31T23:00:00-05:00",  # within the day locally, 2101 in UTC
    ],
)
def test_an_extraction_time_outside_the_bounds_is_refused_without_overflowing(given: str) -> None:
    data = examples.child(extracted_at=given)
    assert errors_of(ChildRecord, data) == [(("extracted_at",), "date_out_of_range")]


@pytest.mark.parametrize("given", ["0001-01-01", "1879-12-31", "2101-01-01", "9999-12-31"])
def test_every_kind_of_date_outside_the_bounds_is_refused(given: str) -> None:
    assert errors_of(HearingRecord, examples.hearing(hearing_date=given)) == [
        (("hearing_date",), "date_out_of_range")
    ]
    case = examples.case(received_date=given, issued_date=None, first_hearing_date=None)
    case.pop("closed_date", None)
    (loc, kind), *_ = errors_of(CaseRecord, case)
    assert loc == ("received_date",) and kind in {"date_out_of_range", "date_in_future"}


def test_the_bounds_are_in_the_generated_json_schema() -> None:
    schema = ChildRecord.model_json_schema()["properties"]
    assert schema["record_version"]["maximum"] == 2**31 - 1
    assert schema["extracted_at"]["formatMinimum"] == "1880-01-01T00:00:00Z"
    hearing = HearingRecord.model_json_schema()["properties"]["hearing_date"]
    assert (hearing["formatMinimum"], hearing["formatMaximum"]) == ("1880-01-01", "2100-12-31")


def test_a_spine_person_from_cafcass_is_refused_at_source() -> None:
    data = examples.spine_person(source="cafcass-cymru")
    assert errors_of(SpinePersonRecord, data) == [(("source",), "source_not_allowed")]


def test_a_child_record_from_the_spine_is_refused_at_source() -> None:
    assert errors_of(ChildRecord, examples.child(source="wds")) == [
        (("source",), "source_not_allowed")
    ]


def test_a_death_before_birth_is_refused() -> None:
    data = examples.spine_person(date_of_death="1990-01-01")
    assert errors_of(SpinePersonRecord, data) == [(("date_of_death",), "date_order")]


def test_an_address_period_ending_before_it_starts_is_refused_at_its_index() -> None:
    data = examples.spine_person(
        address_history=[
            {
                "address": {"postcode": "CF10 1AA"},
                "from_date": "2015-06-01",
                "to_date": "2015-01-01",
            }
        ]
    )
    assert errors_of(SpinePersonRecord, data) == [(("address_history", 0, "to_date"), "date_order")]


def test_a_hearing_ending_before_it_starts_is_refused() -> None:
    data = examples.hearing(hearing_date="2019-11-05", end_date="2019-11-04")
    assert errors_of(HearingRecord, data) == [(("end_date",), "date_order")]


def test_several_problems_are_all_reported_at_once() -> None:
    data = examples.child(date_of_birth="2999-01-01", nhs_number="abc", surname="")
    found = {loc for loc, _ in errors_of(ChildRecord, data)}
    assert found == {("date_of_birth",), ("nhs_number",), ("surname",)}
