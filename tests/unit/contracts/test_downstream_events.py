"""Events after ingest keep their own invariants: tokens, coarse demographics, link status."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.events import (
    LinkageKeysPublished,
    LinkResultPublished,
    MessageDeadLettered,
    PseudonymisedRecordPublished,
    RecordQuarantined,
)
from tests.unit.contracts import events


def error_types(model: type[Any], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(e["loc"], e["type"]) for e in caught.value.errors()]


def test_a_pseudonymised_record_is_keyed_by_its_token() -> None:
    event = PseudonymisedRecordPublished.model_validate(events.pseudonymised())
    assert event.partition_key() == event.record_token


def test_week_of_birth_must_be_a_monday() -> None:
    data = events.pseudonymised(week_of_birth="2018-11-20")
    assert error_types(PseudonymisedRecordPublished, data) == [
        (("week_of_birth",), "week_of_birth_not_monday")
    ]


def test_quality_flags_are_held_sorted_and_unique_and_new_flags_are_accepted() -> None:
    data = events.pseudonymised(flags=["postcode-missing", "a-future-flag", "postcode-missing"])
    event = PseudonymisedRecordPublished.model_validate(data)
    assert event.flags == ("a-future-flag", "postcode-missing")


def test_an_lsoa_must_be_an_english_or_welsh_2021_lsoa_code() -> None:
    data = events.pseudonymised(lsoa="CF10 1AA")
    assert error_types(PseudonymisedRecordPublished, data) == [
        (("lsoa",), "string_pattern_mismatch")
    ]


def test_a_record_token_must_be_base64url() -> None:
    data = events.pseudonymised(record_token="CH-2019-000123")
    assert error_types(PseudonymisedRecordPublished, data) == [
        (("record_token",), "string_pattern_mismatch")
    ]


def test_linkage_keys_exist_only_for_person_records() -> None:
    LinkageKeysPublished.model_validate(events.linkage_keys(record_type="spine-person"))
    assert error_types(LinkageKeysPublished, events.linkage_keys(record_type="hearing")) == [
        (("record_type",), "not_a_person_record")
    ]


def test_bloom_filters_must_be_base64() -> None:
    data = events.linkage_keys(bloom_filters={"forename": "not base64!"})
    assert error_types(LinkageKeysPublished, data) == [
        (("bloom_filters", "forename"), "string_pattern_mismatch")
    ]


def test_a_linked_status_needs_an_alf_and_an_unlinked_one_has_none() -> None:
    assert error_types(LinkResultPublished, events.link_result(alf=None)) == [
        (("status",), "alf_missing")
    ]
    assert error_types(LinkResultPublished, events.link_result(status=99)) == [
        (("status",), "alf_unexpected")
    ]
    unlinked = LinkResultPublished.model_validate(events.link_result(status=99, alf=None))
    assert unlinked.alf is None


def test_match_probability_lies_between_zero_and_one() -> None:
    for bad in (-0.1, 1.01, float("nan")):
        (loc, _), *_ = error_types(LinkResultPublished, events.link_result(match_probability=bad))
        assert loc == ("match_probability",)


def test_a_result_supersedes_only_an_earlier_sequence() -> None:
    data = events.link_result(sequence=2, supersedes_sequence=2)
    assert error_types(LinkResultPublished, data) == [(("supersedes_sequence",), "sequence_order")]


def test_a_quarantined_line_is_keyed_by_source_and_delivery_and_needs_a_reason() -> None:
    data = {
        "delivery_id": "dlv-1",
        "source": "cafcass-england",
        "line_number": 3,
        "original_line": "garbage",
        "errors": [{"path": "", "message": "Invalid JSON", "type": "json_invalid"}],
    }
    assert RecordQuarantined.model_validate(data).partition_key() == "cafcass-england/dlv-1"
    assert error_types(RecordQuarantined, {**data, "errors": []}) == [(("errors",), "too_short")]


def test_a_dead_letter_is_keyed_by_its_original_topic_and_partition() -> None:
    event = MessageDeadLettered.model_validate(events.dead_letter())
    assert event.partition_key() == "pseudonymise.records.v1/3"
    data = events.dead_letter(original_topic="not a topic")
    assert error_types(MessageDeadLettered, data) == [
        (("original_topic",), "string_pattern_mismatch")
    ]


def test_a_quarantined_line_is_kept_exactly_as_sent_whitespace_included() -> None:
    line = '  {"record_id": "x"}\r\n'
    event = RecordQuarantined.model_validate(
        {
            "delivery_id": "dlv-1",
            "source": "cafcass-england",
            "line_number": 1,
            "original_line": line,
            "errors": [{"path": "", "message": "m", "type": "t"}],
        }
    )
    assert event.original_line == line
