"""Large bodies stream through in bounded memory; limits refuse what would hurt the service."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
import starlette.requests
from fastapi.testclient import TestClient

import services.ingest.spool
from services.ingest.entrypoints import create_app
from services.runtime.auth import DevIssuer
from services.runtime.bus.api import TopicSpec
from tests.unit.ingest.support import AUDIENCE, FakeBus, bearer, child, settings_for

NDJSON = {"Content-Type": "application/x-ndjson"}


class CountingProducer:
    """A producer that only counts, so the test measures ingest's memory, not the bus's."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts
        self._lock = threading.Lock()

    def publish(self, topic: str, value: bytes, **_: Any) -> None:
        with self._lock:
            self._counts[topic] = self._counts.get(topic, 0) + 1

    def flush(self, timeout_s: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class CountingBus:
    name = "counting"

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.topics: dict[str, TopicSpec] = {}

    def producer(self) -> CountingProducer:
        return CountingProducer(self.counts)

    def create_topics(self, specs: list[TopicSpec]) -> None:
        self.topics.update({s.name: s for s in specs})

    def topic_meta(self, topic: str) -> object | None:
        return self.topics.get(topic)

    def consumer(self, *_: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _wide_child(i: int) -> dict[str, Any]:
    # Long (but valid) address lines: more body per record, so what grows with the body
    # stands out from per-record work (validation, the bounded string cache of pydantic-core).
    lines = {f"line_{n}": f"{i} {'Heol y Frenhines ' * 5}".strip()[:100] for n in range(1, 6)}
    return child(i, address={**lines, "postcode": "CF10 1AA"})


def _chunks(records: int, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    pending = bytearray()
    for i in range(records):
        pending += json.dumps(_wide_child(i), separators=(",", ":")).encode() + b"\n"
        if len(pending) >= chunk_size:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def _asgi_request(
    app: Any, path: str, query: str, headers: Mapping[str, str], chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Drive the app with a body generated chunk by chunk, as a server would; measure memory."""
    result: dict[str, Any] = {"body": b""}

    async def main() -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "root_path": "",
            "state": {},
        }
        source = iter(chunks)

        async def receive() -> dict[str, Any]:
            chunk = next(source, None)
            if chunk is None:
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                result["status"] = message["status"]
            elif message["type"] == "http.response.body":
                result["body"] += message.get("body", b"")

        async with app.router.lifespan_context(app):
            tracemalloc.start()
            try:
                await app(scope, receive, send)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    peak = anyio.run(main)
    return result["status"], json.loads(result["body"]), peak


def test_a_body_far_larger_than_any_buffer_streams_through_in_bounded_memory(
    tmp_path: Path, issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("the delivery route must not buffer the body")

    for name in ("body", "json", "form"):
        monkeypatch.setattr(starlette.requests.Request, name, never)
    # A small write buffer, so both bodies below fill it: what is compared is what grows with
    # the body, not the buffer.
    monkeypatch.setattr(services.ingest.spool, "_WRITE_BUFFER", 128 * 1024)
    runs: dict[int, tuple[int, int]] = {}
    for records in (800, 8_000):
        bus = CountingBus()
        settings = settings_for(tmp_path / str(records), batch_size=100)
        app = create_app(settings, bus=bus, verifier=issuer.verifier(audience=AUDIENCE))
        body_size = sum(len(c) for c in _chunks(records))

        status, receipt, peak = _asgi_request(
            app,
            "/v1/deliveries",
            "record_type=child",
            {**NDJSON, **bearer(issuer)},
            _chunks(records),
        )

        assert status == 201, receipt
        assert receipt["received"] == receipt["accepted"] == records
        assert receipt["body_bytes"] == body_size
        assert bus.counts == {"ingest.records.v1": records}
        assert list(settings.spool_dir.iterdir()) == []  # the spooled body is gone
        runs[records] = (body_size, peak)

    (small_body, small_peak), (large_body, large_peak) = runs[800], runs[8_000]
    assert small_body > 2 * 128 * 1024 and large_body > 6_000_000
    # Ten times the body costs little more memory: what is held is one publish batch, the
    # write buffer and caches (pydantic-core's string cache grows to ~1 MB), whatever the
    # body's size. Buffering the body would add its whole size (6+ MB more here).
    growth = large_peak - small_peak
    assert growth < (large_body - small_body) / 4, runs


def test_a_body_over_the_maximum_is_refused_with_413_and_nothing_published(
    make_client, issuer: DevIssuer, bus: FakeBus
) -> None:
    client = make_client(max_body_bytes=2000)
    body = b"".join(json.dumps(child(i)).encode() + b"\n" for i in range(20))

    declared = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={**NDJSON, **bearer(issuer)},
    )
    # Chunked: no Content-Length, found while streaming.
    streamed = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=iter([body[:1000], body[1000:]]),
        headers={**NDJSON, **bearer(issuer)},
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["max_bytes"] == 2000
    assert bus.log.messages == []
    assert client.get("/v1/deliveries", headers=bearer(issuer)).json()["items"] == []


def test_a_line_over_the_maximum_is_refused_with_422_naming_the_line(
    make_client, issuer: DevIssuer, bus: FakeBus, tmp_path: Path
) -> None:
    client = make_client(max_line_bytes=600)
    lines = [json.dumps(child(i)) for i in range(3)]
    lines.append(json.dumps(child(3, forename="A" * 700)))
    lines.append(json.dumps(child(4)))

    response = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=("\n".join(lines) + "\n").encode(),
        headers={**NDJSON, **bearer(issuer)},
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/line-too-long")
    assert problem["line"] == 4
    assert problem["max_bytes"] == 600
    assert "AAAA" not in response.text
    assert bus.log.messages == []  # refused whole, before anything was published
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_partner_over_its_rate_limit_gets_429_with_retry_after_others_are_unaffected(
    make_client, issuer: DevIssuer
) -> None:
    client = make_client(rate_per_s=0.01, rate_burst=2)

    def push(source: str) -> Any:
        return client.post(
            "/v1/deliveries/batch",
            params={"record_type": "child"},
            json=[],
            headers=bearer(issuer, source),
        )

    statuses = [push("cafcass-cymru").status_code for _ in range(3)]
    refused = push("cafcass-cymru")

    assert statuses == [201, 200, 429]  # the 2nd is a replay of the 1st (same empty content)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"] == "application/problem+json"
    assert push("cafcass-england").status_code == 201


def test_receipts_keep_a_bounded_number_of_errors_and_count_the_rest(
    make_client, issuer: DevIssuer, bus: FakeBus
) -> None:
    client = make_client(max_receipt_errors=5)
    body = b"".join(b"not json\n" for _ in range(12))

    receipt = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={**NDJSON, **bearer(issuer)},
    ).json()

    assert receipt["rejected"] == 12
    assert len(receipt["errors"]) == 5
    assert receipt["errors_omitted"] == 7
    assert len(bus.log.on("ingest.quarantine.v1")) == 12  # all of them, whatever the receipt


def test_a_csv_without_a_usable_header_is_refused_before_anything_is_recorded(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    response = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=b"record_id,,record_id\nx,y,z\n",
        headers={"Content-Type": "text/csv", **bearer(issuer)},
    )

    assert response.status_code == 422
    assert response.json()["type"].endswith("/unreadable-delivery")
    assert bus.log.messages == []
    assert client.get("/v1/deliveries", headers=bearer(issuer)).json()["items"] == []
