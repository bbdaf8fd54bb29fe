"""A partner pushes deliveries over HTTP and gets receipts that reconcile (in-memory bus)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from contracts.envelope import Envelope, parse_data
from contracts.events import ChildRecordReceived, RecordQuarantined
from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import (
    CANARY_SURNAME,
    FakeBus,
    bearer,
    child,
    csv_body,
    ndjson_delivery,
)

NDJSON = {"Content-Type": "application/x-ndjson"}
RECORDS = "ingest.records.v1"
QUARANTINE = "ingest.quarantine.v1"


def push(
    client: TestClient,
    issuer: DevIssuer,
    body: bytes,
    *,
    source: str = "cafcass-cymru",
    record_type: str = "child",
    headers: dict[str, str] | None = None,
    **params: str,
):
    return client.post(
        "/v1/deliveries",
        params={"record_type": record_type, **params},
        content=body,
        headers={**NDJSON, **bearer(issuer, source), **(headers or {})},
    )


def test_a_partner_pushes_a_delivery_with_bad_rows_and_gets_a_precise_receipt(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(40, bad_every=7)

    response = push(client, issuer, delivery.body)

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert response.headers["Location"] == f"/v1/deliveries/{receipt['delivery_id']}"
    assert receipt["status"] == "complete"
    assert receipt["received"] == 40
    assert receipt["accepted"] == delivery.good == 40 - 5
    assert receipt["rejected"] == 5
    assert receipt["duplicates"] == 0
    first_error_by_line: dict[int, str] = {}
    for error in receipt["errors"]:
        first_error_by_line.setdefault(error["line"], error["path"])
    assert first_error_by_line == delivery.bad
    assert all(e["message"] and e["type"] for e in receipt["errors"])
    assert CANARY_SURNAME not in response.text


def test_good_rows_go_to_the_records_topic_as_envelopes_and_bad_ones_to_quarantine(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(20, bad_every=5)

    receipt = push(client, issuer, delivery.body).json()

    records = bus.log.on(RECORDS)
    quarantine = bus.log.on(QUARANTINE)
    assert len(records) == receipt["accepted"] == 16
    assert len(quarantine) == receipt["rejected"] == 4
    for message in records:
        envelope = Envelope.from_bytes(message.value)
        event = parse_data(envelope)
        assert isinstance(event, ChildRecordReceived)
        assert envelope.source == "ingest"
        assert envelope.delivery_id == receipt["delivery_id"]
        assert message.key == event.partition_key().encode()
        assert message.key == f"cafcass-cymru/child/{event.record.record_id}".encode()
        assert dict(message.headers)["fjo-type"] == b"ingest.child-received.v1"
        assert dict(message.headers)["fjo-event-id"] == str(envelope.event_id).encode()
        assert delivery.lines[event.line_number - 1].find(event.record.record_id) > 0
    lines_seen = []
    for message in quarantine:
        event = parse_data(Envelope.from_bytes(message.value))
        assert isinstance(event, RecordQuarantined)
        assert event.original_line == delivery.lines[event.line_number - 1]
        assert event.errors[0].path == delivery.bad[event.line_number]
        assert message.key == f"cafcass-cymru/{receipt['delivery_id']}".encode()
        lines_seen.append(event.line_number)
    assert lines_seen == sorted(delivery.bad)


@pytest.mark.parametrize("bad_every", [0, 1, 2, 3, 11])
def test_received_always_equals_accepted_plus_rejected_plus_duplicates(
    client: TestClient, issuer: DevIssuer, bus: FakeBus, bad_every: int
) -> None:
    fresh = ndjson_delivery(60, bad_every=bad_every, start=1000 * (bad_every + 1))
    repeat_of_first_half = "\n".join(fresh.lines[:30]) + "\n"
    # Mixed: new records, invalid ones, records repeated within and across deliveries.
    body = (fresh.body.decode() + repeat_of_first_half + "\n\n").encode()

    first = push(client, issuer, body).json()
    second = push(client, issuer, fresh.body, headers={"Idempotency-Key": "other"}).json()

    for receipt in (first, second):
        assert receipt["received"] == (
            receipt["accepted"] + receipt["rejected"] + receipt["duplicates"]
        )
    assert first["received"] == 90
    assert first["accepted"] == fresh.good
    assert first["duplicates"] == sum(1 for n in range(1, 31) if n not in fresh.bad)
    # Every valid record of the second delivery was already accepted.
    assert second["accepted"] == 0
    assert second["duplicates"] == fresh.good
    assert len(bus.log.on(RECORDS)) == fresh.good


def test_the_same_idempotency_key_returns_the_original_receipt_and_publishes_nothing(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(10, bad_every=4)
    key = {"Idempotency-Key": "cymru-2024-05-01-part-1"}
    first = push(client, issuer, delivery.body, headers=key)
    published = len(bus.log.messages)

    again = push(client, issuer, delivery.body, headers=key)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(bus.log.messages) == published


def test_the_same_content_without_a_key_returns_the_original_receipt(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(10, bad_every=3)
    first = push(client, issuer, delivery.body)
    published = len(bus.log.messages)

    again = push(client, issuer, delivery.body)

    assert again.status_code == 200
    assert again.json()["delivery_id"] == first.json()["delivery_id"]
    assert len(bus.log.messages) == published  # not even the quarantined lines again


def test_a_declared_content_digest_finds_the_original_before_the_body_is_processed(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    import base64
    import hashlib

    delivery = ndjson_delivery(5)
    digest = base64.b64encode(hashlib.sha256(delivery.body).digest()).decode()
    first = push(client, issuer, delivery.body, headers={"Content-Digest": f"sha-256=:{digest}:"})
    again = push(client, issuer, delivery.body, headers={"Content-Digest": f"sha-256=:{digest}:"})
    wrong = push(client, issuer, b'{"x":1}\n', headers={"Content-Digest": f"sha-256=:{digest}:"})

    assert again.status_code == 200
    assert again.json()["delivery_id"] == first.json()["delivery_id"]
    # A body that is not what its digest says is refused before any record is processed.
    assert wrong.status_code == 200  # the digest names an earlier delivery: its receipt
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    mismatch = push(client, issuer, b'{"x":1}\n', headers={"Content-Digest": f"sha-256=:{other}:"})
    assert mismatch.status_code == 400
    assert mismatch.json()["type"].endswith("/digest-mismatch")


def test_an_idempotency_key_reused_for_other_content_is_refused(
    client: TestClient, issuer: DevIssuer
) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert push(client, issuer, ndjson_delivery(3).body, headers=key).status_code == 201

    response = push(client, issuer, ndjson_delivery(4).body, headers=key)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/idempotency-key-reused")


def test_a_record_already_accepted_in_an_earlier_delivery_counts_as_a_duplicate(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    line = json.dumps(child(1)).encode() + b"\n"
    newer = json.dumps(child(1, version=2)).encode() + b"\n"
    push(client, issuer, line)

    receipt = push(client, issuer, line + newer).json()

    assert (receipt["accepted"], receipt["duplicates"]) == (1, 1)
    versions = [
        parse_data(Envelope.from_bytes(m.value)).record.record_version for m in bus.log.on(RECORDS)
    ]
    assert versions == [1, 2]


def test_a_csv_delivery_is_read_with_nested_columns_and_reported_by_row_line(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    records = [child(i) for i in range(5)]
    records[2]["address"] = {"line_1": "Multi\nline street", "postcode": "CF10 1AA"}
    records[3]["date_of_birth"] = "01/02/2019"
    body = csv_body(records)

    response = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={"Content-Type": "text/csv; charset=utf-8", **bearer(issuer)},
    )

    receipt = response.json()
    assert response.status_code == 201, response.text
    assert (receipt["received"], receipt["accepted"], receipt["rejected"]) == (5, 3, 2)
    # Row 3 spans lines 4-5 (a quoted newline in a field not allowed to hold one); row 4 is
    # on line 6. Both are found by their first line.
    assert [(e["line"], e["path"]) for e in receipt["errors"]] == [
        (4, "address.line_1"),
        (6, "date_of_birth"),
    ]
    record = parse_data(Envelope.from_bytes(bus.log.on(RECORDS)[0].value)).record
    assert record.address is not None and record.address.postcode is not None


def test_the_record_type_can_be_given_as_a_header(client: TestClient, issuer: DevIssuer) -> None:
    response = client.post(
        "/v1/deliveries",
        content=ndjson_delivery(2).body,
        headers={**NDJSON, **bearer(issuer), "Fjo-Record-Type": "child"},
    )
    assert response.status_code == 201
    assert response.json()["record_type"] == "child"


def test_a_missing_record_type_or_an_unknown_media_type_is_a_clear_4xx(
    client: TestClient, issuer: DevIssuer
) -> None:
    missing = client.post("/v1/deliveries", content=b"{}\n", headers={**NDJSON, **bearer(issuer)})
    xml = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=b"<a/>",
        headers={"Content-Type": "application/xml", **bearer(issuer)},
    )
    unknown = client.post(
        "/v1/deliveries",
        params={"record_type": "pets"},
        content=b"{}\n",
        headers={**NDJSON, **bearer(issuer)},
    )

    assert missing.status_code == 422
    assert missing.json()["type"].endswith("/record-type-missing")
    assert xml.status_code == 415
    assert unknown.status_code == 422
    for response in (missing, xml, unknown):
        assert response.headers["content-type"] == "application/problem+json"


def test_a_json_batch_is_validated_like_a_stream_with_positions_as_line_numbers(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    batch = [child(1), child(2, sex="purple"), "not an object", child(1)]

    response = client.post(
        "/v1/deliveries/batch", params={"record_type": "child"}, json=batch, headers=bearer(issuer)
    )

    receipt = response.json()
    assert response.status_code == 201, response.text
    assert receipt["format"] == "json"
    assert (
        receipt["received"],
        receipt["accepted"],
        receipt["rejected"],
        receipt["duplicates"],
    ) == (4, 1, 2, 1)
    assert [(e["line"], e["path"]) for e in receipt["errors"]] == [(2, "sex"), (3, "")]


def test_a_batch_that_is_not_an_array_or_too_big_is_refused(make_client, issuer: DevIssuer) -> None:
    client = make_client(max_batch_records=3, max_batch_bytes=4096)
    url, params = "/v1/deliveries/batch", {"record_type": "child"}

    not_array = client.post(url, params=params, json={"records": []}, headers=bearer(issuer))
    too_many = client.post(
        url, params=params, json=[child(i) for i in range(4)], headers=bearer(issuer)
    )
    too_big = client.post(
        url,
        params=params,
        content=b"[" + b" " * 5000 + b"]",
        headers={"Content-Type": "application/json", **bearer(issuer)},
    )

    assert not_array.status_code == 422
    assert too_many.status_code == 413
    assert too_many.json()["max_records"] == 3
    assert too_big.status_code == 413


def test_a_partner_lists_its_own_deliveries_page_by_page(
    client: TestClient, issuer: DevIssuer
) -> None:
    mine = [
        push(client, issuer, ndjson_delivery(2, start=10 * i).body).json()["delivery_id"]
        for i in range(5)
    ]
    push(
        client,
        issuer,
        ndjson_delivery(2, source="cafcass-england", start=900).body,
        source="cafcass-england",
    )

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/deliveries", params=params, headers=bearer(issuer)).json()
        pages += 1
        seen += [item["delivery_id"] for item in page["items"]]
        assert all(item["source"] == "cafcass-cymru" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == list(reversed(mine))
    # Garbled, or a well-formed cursor whose position is not a timestamp: 422, as every list.
    for garbled in ("%%%", "eHx5"):
        bad = client.get("/v1/deliveries", params={"cursor": garbled}, headers=bearer(issuer))
        assert bad.status_code == 422
        assert bad.json()["type"] == "https://fjo.invalid/problems/invalid-cursor"


def test_the_openapi_document_describes_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    push_op = spec["paths"]["/v1/deliveries"]["post"]
    assert set(push_op["requestBody"]["content"]) == {"application/x-ndjson", "text/csv"}
    assert push_op["requestBody"]["content"]["application/x-ndjson"]["example"]
    assert {"201", "200", "401", "403", "413", "422", "429", "503"} <= set(push_op["responses"])
    assert "example" in push_op["responses"]["413"]["content"]["application/problem+json"]
    assert spec["paths"]["/v1/deliveries/batch"]["post"]["requestBody"]["content"][
        "application/json"
    ]["example"]
    assert {"get"} <= set(spec["paths"]["/v1/deliveries/{delivery_id}"])
    assert spec["components"]["schemas"]["Receipt"]["examples"]


def test_readiness_reports_the_database_and_the_bus(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "bus": "ok"}


def test_no_record_value_reaches_a_receipt_a_listing_or_a_log_line(
    client: TestClient, issuer: DevIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    from services.runtime.telemetry import JsonLogFormatter

    caplog.set_level("DEBUG")
    delivery = ndjson_delivery(30, bad_every=2)

    receipt = push(client, issuer, delivery.body).json()
    fetched = client.get(f"/v1/deliveries/{receipt['delivery_id']}", headers=bearer(issuer))
    listing = client.get("/v1/deliveries", headers=bearer(issuer))

    formatter = JsonLogFormatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "delivery complete" in logged
    for text in (json.dumps(receipt), fetched.text, listing.text, logged):
        assert CANARY_SURNAME not in text
        assert "CH-000000" not in text  # no record id either


def test_every_answer_the_deliveries_route_gives_is_in_its_openapi_document(
    client: TestClient, issuer: DevIssuer
) -> None:
    # Found by the fuzzer: a bad Content-Digest answers 400, which the document did not list;
    # a batch item that is not an object is refused in the receipt, not as a bad batch.
    spec = client.get("/openapi.json").json()
    bad_digest = push(client, issuer, b'{"x":1}\n', headers={"Content-Digest": "sha-256=:x:"})
    assert bad_digest.status_code == 400
    push_doc = spec["paths"]["/v1/deliveries"]["post"]["responses"]
    assert push_doc["400"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    batch = client.post(
        "/v1/deliveries/batch",
        params={"record_type": "child"},
        json=[[1], "x", child(1)],
        headers=bearer(issuer),
    )
    assert batch.status_code == 201, batch.text
    assert [e["type"] for e in batch.json()["errors"]][:2] == ["json_not_object"] * 2
    batch_body = spec["paths"]["/v1/deliveries/batch"]["post"]["requestBody"]
    assert batch_body["content"]["application/json"]["schema"]["items"] == {}
