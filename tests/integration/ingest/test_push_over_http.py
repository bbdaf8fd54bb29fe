"""Over real HTTP, onto a real bus: the embedded log on SQLite, and Kafka with PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx

from contracts.envelope import Envelope, parse_data
from contracts.events import ChildRecordReceived, RecordQuarantined
from tests.integration.ingest.conftest import Stack, read_deliveries, read_delivery
from tests.unit.ingest.support import CANARY_SURNAME, ndjson_delivery

RECORDS = "ingest.records.v1"
QUARANTINE = "ingest.quarantine.v1"
NDJSON = {"Content-Type": "application/x-ndjson"}


def _push(
    stack: Stack,
    body: bytes,
    *,
    source: str = "cafcass-cymru",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={**NDJSON, **stack.headers(source), **(headers or {})},
        timeout=120,
    )


def test_a_partner_pushes_a_realistic_delivery_and_the_bus_holds_exactly_what_the_receipt_says(
    stack: Stack,
) -> None:
    delivery = ndjson_delivery(600, bad_every=9, start=10_000_000 + hash(stack.label) % 10_000)
    records_consumer = stack.consumer([RECORDS])
    quarantine_consumer = stack.consumer([QUARANTINE])

    response = _push(stack, delivery.body, headers={"Idempotency-Key": "realistic-1"})

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["status"] == "complete"
    assert receipt["received"] == 600
    assert receipt["accepted"] == delivery.good
    assert receipt["rejected"] == len(delivery.bad)
    assert receipt["received"] == receipt["accepted"] + receipt["rejected"] + receipt["duplicates"]
    assert {e["line"]: e["path"] for e in reversed(receipt["errors"])} == delivery.bad
    assert CANARY_SURNAME not in response.text

    good = read_delivery(records_consumer, receipt["delivery_id"], receipt["accepted"])
    bad = read_delivery(quarantine_consumer, receipt["delivery_id"], receipt["rejected"])
    assert len(good) == receipt["accepted"]
    assert len(bad) == receipt["rejected"]
    lines = set()
    for message in good:
        event = parse_data(Envelope.from_bytes(message.value))
        assert isinstance(event, ChildRecordReceived)
        assert message.key == event.partition_key().encode()
        lines.add(event.line_number)
    assert lines == set(range(1, 601)) - set(delivery.bad)
    for message in bad:
        event = parse_data(Envelope.from_bytes(message.value))
        assert isinstance(event, RecordQuarantined)
        assert event.original_line == delivery.lines[event.line_number - 1]
        assert event.errors[0].path == delivery.bad[event.line_number]

    # Re-sent with the same key, then without a key (same content): the original receipt,
    # and nothing new on either topic.
    again = _push(stack, delivery.body, headers={"Idempotency-Key": "realistic-1"})
    same_content = _push(stack, delivery.body)
    assert again.status_code == same_content.status_code == 200
    assert again.json() == same_content.json() == receipt
    assert read_delivery(records_consumer, receipt["delivery_id"], 0, quiet_s=3) == []
    assert read_delivery(quarantine_consumer, receipt["delivery_id"], 0, quiet_s=1) == []
    records_consumer.close()
    quarantine_consumer.close()


def test_records_re_sent_in_a_new_delivery_are_duplicates_and_not_published_again(
    stack: Stack,
) -> None:
    first = ndjson_delivery(50, start=20_000_000 + hash(stack.label) % 10_000)
    consumer = stack.consumer([RECORDS])
    receipt_one = _push(stack, first.body).json()
    # Same records plus ten new ones: different content, so a new delivery.
    more = ndjson_delivery(60, start=20_000_000 + hash(stack.label) % 10_000)

    receipt_two = _push(stack, more.body).json()

    assert (receipt_two["accepted"], receipt_two["duplicates"]) == (10, 50)
    published = read_deliveries(
        consumer, {receipt_one["delivery_id"]: 50, receipt_two["delivery_id"]: 10}
    )
    assert len(published[receipt_one["delivery_id"]]) == 50
    assert len(published[receipt_two["delivery_id"]]) == 10
    consumer.close()


def test_concurrent_deliveries_with_overlapping_records_publish_each_record_once(
    stack: Stack,
) -> None:
    base = 30_000_000 + hash(stack.label) % 10_000
    # Four deliveries, each sharing half its records with the next one.
    deliveries = [ndjson_delivery(200, start=base + 100 * k) for k in range(4)]
    unique_records = 100 * 3 + 200
    consumer = stack.consumer([RECORDS])
    receipts: list[dict] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        response = _push(stack, body)
        with lock:
            receipts.append(response.json())

    threads = [threading.Thread(target=send, args=(d.body,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(receipts) == 4, receipts
    assert sum(r["accepted"] for r in receipts) == unique_records
    assert sum(r["duplicates"] for r in receipts) == 800 - unique_records
    by_delivery = read_deliveries(consumer, {r["delivery_id"]: r["accepted"] for r in receipts})
    published = [m for messages in by_delivery.values() for m in messages]
    record_ids = [json.loads(m.value)["data"]["record"]["record_id"] for m in published]
    assert len(record_ids) == len(set(record_ids)) == unique_records
    consumer.close()


def test_source_impersonation_and_reading_another_partners_receipt_are_refused(
    stack: Stack,
) -> None:
    body = ndjson_delivery(3, start=40_000_000).body
    as_other = httpx.post(
        f"{stack.url}/v1/deliveries",
        params={"record_type": "child", "source": "cafcass-england"},
        content=body,
        headers={**NDJSON, **stack.headers("cafcass-cymru")},
    )
    receipt = _push(stack, body).json()
    peek = httpx.get(
        f"{stack.url}/v1/deliveries/{receipt['delivery_id']}",
        headers=stack.headers("cafcass-england"),
    )

    assert as_other.status_code == 403
    assert peek.status_code == 404
    assert peek.headers["content-type"] == "application/problem+json"


def test_readiness_checks_the_real_database_and_bus(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "bus": "ok"}


def test_limits_hold_over_a_real_connection(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(max_body_bytes=10_000, max_line_bytes=2_000)
    big = ndjson_delivery(100, start=50_000_000).body

    def chunks():  # no Content-Length: the limit is found while streaming
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    too_big = httpx.post(
        f"{stack.url}/v1/deliveries",
        params={"record_type": "child"},
        content=chunks(),
        headers={**NDJSON, **stack.headers()},
    )
    long_line = httpx.post(
        f"{stack.url}/v1/deliveries",
        params={"record_type": "child"},
        content=b'{"a": "' + b"x" * 3000 + b'"}\n',
        headers={**NDJSON, **stack.headers()},
    )

    assert too_big.status_code == 413
    assert long_line.status_code == 422
    assert long_line.json()["line"] == 1
