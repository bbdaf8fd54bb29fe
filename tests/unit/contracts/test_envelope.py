"""The envelope wraps events, travels as compact UTF-8 JSON and gives the typed event back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts.envelope import Envelope, parse_data
from contracts.events import ChildRecordReceived, LinkResultPublished
from contracts.services import Service
from tests.unit.contracts import events


def test_wrapping_an_event_fills_type_version_key_and_json_data() -> None:
    event = events.child_received()
    envelope = Envelope.wrap(
        event, source=Service.INGEST, trace_id="4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert envelope.type == "ingest.child-received.v1"
    assert envelope.schema_version == 1
    assert envelope.source is Service.INGEST
    assert envelope.partition_key == "cafcass-cymru/child/CH-2019-000123"
    assert envelope.data["delivery_id"] == "dlv-2024-05-01-0001"
    assert isinstance(envelope.event_id, UUID)
    assert envelope.time.tzinfo is UTC


def test_an_explicit_partition_key_overrides_the_events_own() -> None:
    envelope = Envelope.wrap(events.child_received(), source="ingest", partition_key="k")
    assert envelope.partition_key == "k"


def test_envelope_bytes_round_trip_to_an_equal_envelope_and_event() -> None:
    event = events.child_received()
    envelope = Envelope.wrap(event, source="ingest", correlation_id="req-1", delivery_id="dlv-1")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert parse_data(again) == event


def test_envelope_bytes_are_compact_utf8_json_without_empty_fields() -> None:
    event = events.child_received(forename="Gwenllïan", surname="Ŵyn")
    raw = Envelope.wrap(event, source="ingest").to_bytes()
    assert b", " not in raw and b": " not in raw
    assert "Gwenllïan".encode() in raw
    assert "trace_id" not in json.loads(raw)


def test_parse_data_gives_the_registered_model_for_the_type() -> None:
    result = LinkResultPublished.model_validate(events.link_result())
    parsed = parse_data(Envelope.wrap(result, source="link"))
    assert type(parsed) is LinkResultPublished
    assert parsed == result


def test_readers_ignore_fields_a_newer_producer_added() -> None:
    envelope = Envelope.wrap(events.child_received(), source="ingest")
    document = json.loads(envelope.to_bytes())
    document["new_envelope_field"] = 1
    document["data"]["new_event_field"] = 2
    document["data"]["record"]["new_record_field"] = 3
    again = Envelope.from_bytes(json.dumps(document).encode())
    assert isinstance(parse_data(again), ChildRecordReceived)


def test_a_producer_cannot_build_an_envelope_with_an_unknown_field() -> None:
    document = json.loads(Envelope.wrap(events.child_received(), source="ingest").to_bytes())
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Envelope.model_validate(document | {"surprise": 1})


def test_a_type_not_named_domain_event_version_is_refused() -> None:
    document = json.loads(Envelope.wrap(events.child_received(), source="ingest").to_bytes())
    for bad in ("ingest.child-received", "Ingest.child.v1", "ingest.child.v0", "a.b.c.v1"):
        with pytest.raises(ValidationError) as caught:
            Envelope.model_validate(document | {"type": bad})
        assert caught.value.errors()[0]["loc"] == ("type",)


def test_a_schema_version_that_disagrees_with_the_type_suffix_is_refused() -> None:
    document = json.loads(Envelope.wrap(events.child_received(), source="ingest").to_bytes())
    with pytest.raises(ValidationError) as caught:
        Envelope.model_validate(document | {"schema_version": 2})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("schema_version",), "schema_version_mismatch")
    ]


def test_a_source_that_is_not_a_service_is_refused() -> None:
    with pytest.raises(ValueError):
        Envelope.wrap(events.child_received(), source="cafcass-cymru")


def test_envelope_time_must_carry_a_timezone_and_is_held_in_utc() -> None:
    event = events.child_received()
    with pytest.raises(ValidationError):
        Envelope.wrap(event, source="ingest", time=datetime(2024, 5, 1, 9, 30))
    local = datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert Envelope.wrap(event, source="ingest", time=local).time == datetime(
        2024, 5, 1, 9, 30, tzinfo=UTC
    )


def test_bytes_that_are_not_utf8_json_are_refused() -> None:
    for raw in (b"\xff\xfe", b"not json", b'{"type": "\xff"}'):
        with pytest.raises(ValidationError):
            Envelope.from_bytes(raw)


def test_a_trace_id_must_be_a_w3c_trace_id() -> None:
    with pytest.raises(ValidationError):
        Envelope.wrap(events.child_received(), source="ingest", trace_id="not-a-trace")
