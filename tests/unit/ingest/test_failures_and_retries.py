"""When the bus fails mid-delivery the receipt says so, and re-sending repairs it exactly."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from contracts.records import RecordType, SourceAgency
from services.ingest.deliveries import DeliveryInProgress, DeliveryService
from services.ingest.domain.parsing import DeliveryFormat, parse_ndjson
from services.ingest.entrypoints import migrate
from services.ingest.producers import PoolExhausted, ProducerPool
from services.runtime.auth import DevIssuer
from services.runtime.db import make_engine, make_session_factory
from tests.unit.ingest.support import FakeBus, bearer, ndjson_delivery

NDJSON = {"Content-Type": "application/x-ndjson"}


def _event_ids(bus: FakeBus, topic: str) -> list[str]:
    return [json.loads(m.value)["event_id"] for m in bus.log.on(topic)]


def test_a_bus_failure_fails_the_delivery_and_a_resend_with_the_key_completes_it_exactly(
    make_client: Callable[..., TestClient], issuer: DevIssuer, bus: FakeBus
) -> None:
    client = make_client(batch_size=10)
    delivery = ndjson_delivery(35, bad_every=6)
    key = {"Idempotency-Key": "cymru-part-7"}
    bus.log.fail_next_flushes = 0

    # The third batch's flush is refused by the broker.
    original_flush = bus.producer().__class__.flush
    calls = {"n": 0}

    def flaky(self, timeout_s=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            bus.log.fail_next_flushes = 1
        return original_flush(self, timeout_s)

    bus.producer().__class__.flush = flaky  # type: ignore[method-assign]
    try:
        failed = client.post(
            "/v1/deliveries",
            params={"record_type": "child"},
            content=delivery.body,
            headers={**NDJSON, **bearer(issuer), **key},
        )
    finally:
        bus.producer().__class__.flush = original_flush  # type: ignore[method-assign]

    assert failed.status_code == 503
    problem = failed.json()
    assert problem["type"].endswith("/delivery-failed")
    assert "Retry-After" in failed.headers
    receipt = client.get(f"/v1/deliveries/{problem['delivery_id']}", headers=bearer(issuer))
    assert receipt.json()["status"] == "failed"
    assert receipt.json()["received"] == 20  # two batches made it; the third did not count

    resent = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=delivery.body,
        headers={**NDJSON, **bearer(issuer), **key},
    )

    final = resent.json()
    assert resent.status_code == 201
    assert final["delivery_id"] == problem["delivery_id"]
    assert final["status"] == "complete"
    assert (final["received"], final["accepted"], final["rejected"], final["duplicates"]) == (
        35,
        delivery.good,
        len(delivery.bad),
        0,
    )
    # A refused batch may still reach the broker later (at-least-once), but always under the
    # same event ids, which consumers de-duplicate on: each record exactly once by id.
    assert len(set(_event_ids(bus, "ingest.records.v1"))) == delivery.good
    assert len(set(_event_ids(bus, "ingest.quarantine.v1"))) == len(delivery.bad)


def test_a_second_request_with_a_key_still_processing_is_told_it_is_in_progress(
    tmp_path: Path, bus: FakeBus
) -> None:
    service = _service(tmp_path, bus, lambda: datetime.now(UTC))
    lines = ndjson_delivery(3).body.splitlines(keepends=True)
    reading, release = threading.Event(), threading.Event()

    def slow_candidates():  # type: ignore[no-untyped-def]
        for number, candidate in enumerate(parse_ndjson(lines), start=1):
            if number == 2:  # the delivery is recorded; its body is still being read
                reading.set()
                release.wait(10)
            yield candidate

    def run(candidates) -> object:  # type: ignore[no-untyped-def]
        return service.run(
            source=SourceAgency.CAFCASS_CYMRU,
            record_type=RecordType.CHILD,
            fmt=DeliveryFormat.NDJSON,
            idempotency_key="slow-one",
            content_sha256="1" * 64,
            body_bytes=1,
            candidates=candidates,
        )

    results: dict[str, object] = {}
    thread = threading.Thread(target=lambda: results.setdefault("first", run(slow_candidates())))
    thread.start()
    try:
        assert reading.wait(10)
        try:
            run(parse_ndjson(lines))
        except DeliveryInProgress:
            results["second"] = "in progress"
    finally:
        release.set()
        thread.join(10)

    assert results["second"] == "in progress"
    assert results["first"].receipt.accepted == 3  # type: ignore[attr-defined]


def _service(tmp_path: Path, bus: FakeBus, clock: Callable[[], datetime]) -> DeliveryService:
    url = f"sqlite+pysqlite:///{tmp_path / 'svc.db'}"
    engine = make_engine(url)
    migrate(engine)
    return DeliveryService(
        make_session_factory(engine),
        ProducerPool(bus.producer, size=2),
        batch_size=1,
        stale_after_s=60,
        clock=clock,
    )


def test_a_delivery_abandoned_by_a_crashed_process_can_be_retried_once_stale(
    tmp_path: Path, bus: FakeBus
) -> None:
    now = [datetime(2024, 5, 1, 9, 0, tzinfo=UTC)]
    service = _service(tmp_path, bus, lambda: now[0])
    delivery = ndjson_delivery(4)

    def run() -> object:
        return service.run(
            source=SourceAgency.CAFCASS_CYMRU,
            record_type=RecordType.CHILD,
            fmt=DeliveryFormat.NDJSON,
            idempotency_key="k",
            content_sha256="0" * 64,
            body_bytes=len(delivery.body),
            candidates=parse_ndjson(delivery.body.splitlines(keepends=True)),
        )

    # A process that died mid-delivery left the row "processing".
    begun = service._begin(
        SourceAgency.CAFCASS_CYMRU, RecordType.CHILD, DeliveryFormat.NDJSON, "k", "0" * 64, 1
    )
    assert isinstance(begun, str)
    try:
        run()
    except DeliveryInProgress:
        pass
    else:
        raise AssertionError("a fresh processing delivery must not be run twice")

    now[0] += timedelta(seconds=61)
    outcome = run()

    assert outcome.receipt.delivery_id == begun  # type: ignore[attr-defined]
    assert outcome.receipt.accepted == 4  # type: ignore[attr-defined]


def test_the_producer_pool_bounds_concurrent_deliveries(bus: FakeBus) -> None:
    pool = ProducerPool(bus.producer, size=1)
    with pool.lend():
        try:
            with pool.lend():
                raise AssertionError("a second producer must not be lent")
        except PoolExhausted:
            pass
    with pool.lend() as again:
        assert again is bus.producers[0]  # returned and reused
    pool.close()
