"""One valid-looking line never fails a delivery: 50 good records and one hostile line (JSON
nested past the parser's depth, a version over 2**31 - 1 or ``true``, an extraction time that
overflows when converted) is 50 accepted and that one line rejected with its number and
reason, in NDJSON, CSV and JSON batches; the receipt reconciles, and a retry with the same
Idempotency-Key gets the same receipt. Each of these was a 500 for the whole delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import FakeBus, bearer, child, csv_body

GOOD = 50
BAD_AT = 26  # the hostile record's 1-based position among the records
RECORDS = "ingest.records.v1"
QUARANTINE = "ingest.quarantine.v1"

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000

FIELD_ATTACKS: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (change to one record, error path, error type)
    "version 2**63": ({"record_version": 2**63}, "record_version", "less_than_equal"),
    "version 10**30": ({"record_version": 10**30}, "record_version", "less_than_equal"),
    "version true": ({"record_version": True}, "record_version", "int_type"),
    "extracted_at year 9999 at -23:59": (
        {"extracted_at": "9999-12-31T23:59:59-23:59"},
        "extracted_at",
        "date_out_of_range",
    ),
    "extracted_at year 1 at +23:59": (
        {"extracted_at": "0001-01-01T00:00:00+23:59"},
        "extracted_at",
        "date_out_of_range",
    ),
}
# CSV has no booleans (a cell "true" is text, refused as ever) and no nesting.
CSV_ATTACKS = [name for name in FIELD_ATTACKS if name != "version true"]


def records(bad: dict[str, Any] | None) -> list[dict[str, Any]]:
    """50 good child records, with ``bad``'s change applied to a 51st at position 26."""
    good = [child(70_000 + i) for i in range(GOOD)]
    if bad is not None:
        good.insert(BAD_AT - 1, child(70_999, **bad))
    return good


def push(
    client: TestClient, issuer: DevIssuer, body: bytes, media: str, *, batch: bool, key: str
) -> Any:
    return client.post(
        "/v1/deliveries/batch" if batch else "/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={"Content-Type": media, "Idempotency-Key": key, **bearer(issuer)},
    )


def assert_one_line_rejected(
    client: TestClient,
    issuer: DevIssuer,
    bus: FakeBus,
    body: bytes,
    media: str,
    *,
    line: int,
    path: str,
    kind: str,
    batch: bool = False,
) -> None:
    first = push(client, issuer, body, media, batch=batch, key="hostile-1")
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["status"] == "complete"
    assert (receipt["received"], receipt["accepted"], receipt["rejected"]) == (GOOD + 1, GOOD, 1)
    assert receipt["received"] == receipt["accepted"] + receipt["rejected"] + receipt["duplicates"]
    assert [(e["line"], e["path"], e["type"]) for e in receipt["errors"]] == [(line, path, kind)]
    assert len(bus.log.on(RECORDS)) == GOOD
    (quarantined,) = bus.log.on(QUARANTINE)
    assert json.loads(quarantined.value)["data"]["line_number"] == line

    again = push(client, issuer, body, media, batch=batch, key="hostile-1")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == receipt
    assert len(bus.log.on(RECORDS)) == GOOD and len(bus.log.on(QUARANTINE)) == 1


def ndjson(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("name", sorted(FIELD_ATTACKS))
def test_an_ndjson_line_with_an_out_of_range_field_is_rejected_alone(
    name: str, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    change, path, kind = FIELD_ATTACKS[name]
    body = ndjson([json.dumps(r) for r in records(change)])
    assert_one_line_rejected(
        client, issuer, bus, body, "application/x-ndjson", line=BAD_AT, path=path, kind=kind
    )


@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_an_ndjson_line_nested_past_the_parsers_depth_is_rejected_alone(
    deep: str, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    lines = [json.dumps(r) for r in records(None)]
    lines.insert(BAD_AT - 1, deep)
    assert_one_line_rejected(
        client,
        issuer,
        bus,
        ndjson(lines),
        "application/x-ndjson",
        line=BAD_AT,
        path="",
        kind="json_too_deep",
    )


@pytest.mark.parametrize("name", CSV_ATTACKS)
def test_a_csv_row_with_an_out_of_range_field_is_rejected_alone(
    name: str, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    change, path, kind = FIELD_ATTACKS[name]
    body = csv_body(records(change))
    # CSV line numbers count the header: the 26th record is on line 27.
    assert_one_line_rejected(
        client, issuer, bus, body, "text/csv", line=BAD_AT + 1, path=path, kind=kind
    )


@pytest.mark.parametrize("name", sorted(FIELD_ATTACKS))
def test_a_json_batch_item_with_an_out_of_range_field_is_rejected_alone(
    name: str, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    change, path, kind = FIELD_ATTACKS[name]
    body = json.dumps(records(change)).encode()
    assert_one_line_rejected(
        client, issuer, bus, body, "application/json", line=BAD_AT, path=path, kind=kind, batch=True
    )


def test_a_json_batch_nested_past_the_parsers_depth_is_refused_whole_as_not_json(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    """A batch is one JSON document: one unreadable part makes all of it unreadable, as a
    syntax error anywhere does; a 422 naming why, never a 500."""
    items = [json.dumps(r) for r in records(None)]
    items.insert(BAD_AT - 1, DEEP_ARRAY)
    body = ("[" + ",".join(items) + "]").encode()
    r = push(client, issuer, body, "application/json", batch=True, key="deep-batch")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/batch-not-json") and "nested" in r.json()["detail"]
    assert bus.log.on(RECORDS) == [] and bus.log.on(QUARANTINE) == []


def test_the_largest_version_is_accepted_and_stored(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    body = ndjson([json.dumps(child(71_000, version=2**31 - 1))])
    r = push(client, issuer, body, "application/x-ndjson", batch=False, key="max-version")
    assert r.status_code == 201, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 0)
    more = ndjson([json.dumps(child(71_000, version=2**31 - 1)), json.dumps(child(71_001))])
    again = push(client, issuer, more, "application/x-ndjson", batch=False, key="max-version-2")
    # The stored key reads back as the same version: a duplicate, not a new record.
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1), again.text
