"""Identifying fields are marked in the contracts, so code and the leak test can enumerate them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts.events import (
    ChildRecordReceived,
    LinkageKeysPublished,
    PseudonymisedRecordPublished,
    RecordQuarantined,
)
from contracts.identifiers import IdentifierKind, identifier_field_kinds, identifier_fields
from contracts.records import (
    AdultPartyRecord,
    CaseRecord,
    ChildRecord,
    HearingRecord,
    PartyChildRelationshipRecord,
    SpinePersonRecord,
)
from tests.unit.contracts import events


def test_a_child_records_identifiers_are_its_ids_names_birth_date_nhs_number_and_address() -> None:
    assert identifier_fields(ChildRecord) == {
        "record_id",
        "case_id",
        "forename",
        "middle_names",
        "surname",
        "date_of_birth",
        "nhs_number",
        "address",
    }


def test_an_adult_partys_previous_surnames_are_identifiers() -> None:
    assert {"previous_surnames", "surname", "forename", "nhs_number"} <= identifier_fields(
        AdultPartyRecord
    )


def test_identifiers_inside_nested_content_are_listed_by_dotted_path() -> None:
    assert identifier_fields(CaseRecord) == {
        "record_id",
        "court_case_number",
        "outcomes.child_record_id",
    }


def test_relationship_and_hearing_records_identify_only_through_their_ids() -> None:
    assert identifier_fields(PartyChildRelationshipRecord) == {
        "record_id",
        "case_id",
        "adult_record_id",
        "child_record_id",
    }
    assert identifier_fields(HearingRecord) == {"record_id", "case_id"}


def test_a_spine_persons_identifiers_include_death_and_address_history() -> None:
    kinds = identifier_field_kinds(SpinePersonRecord)
    assert kinds["date_of_death"] is IdentifierKind.DATE_OF_DEATH
    assert kinds["address_history"] is IdentifierKind.ADDRESS
    assert kinds["record_id"] is IdentifierKind.RECORD_ID


def test_ingest_events_expose_their_records_identifiers_under_record() -> None:
    assert "record.nhs_number" in identifier_fields(ChildRecordReceived)
    assert identifier_fields(RecordQuarantined) == {"original_line"}


def test_identifier_marks_appear_in_the_json_schema() -> None:
    schema = ChildRecord.model_json_schema()
    marked = {name for name, prop in schema["properties"].items() if prop.get("x-identifier")}
    assert marked == identifier_fields(ChildRecord)


def test_pseudonymised_events_have_no_identifier_fields() -> None:
    assert identifier_fields(PseudonymisedRecordPublished) == set()
    assert identifier_fields(LinkageKeysPublished) == set()


@pytest.mark.parametrize(
    "content",
    [
        {"forename": "Cerys"},
        {"nested": {"nhs_number": "9434765919"}},
        {"outcomes": [{"child_record_id": "CH-1", "order_made": "care-order"}]},
        {"postcode": "CF10 1AA"},
    ],
)
def test_pseudonymised_content_may_not_carry_a_field_named_like_an_identifier(
    content: dict[str, object],
) -> None:
    with pytest.raises(ValidationError) as caught:
        PseudonymisedRecordPublished.model_validate(events.pseudonymised(content=content))
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("content",), "identifier_in_content")
    ]


def test_the_error_for_identifier_content_names_the_field_but_not_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        PseudonymisedRecordPublished.model_validate(
            events.pseudonymised(content={"surname": "Canaryname"})
        )
    assert "Canaryname" not in json.dumps(caught.value.errors(include_input=False))
    assert "surname" in caught.value.errors()[0]["msg"]
