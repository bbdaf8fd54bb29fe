"""Test helpers for ingest: synthetic deliveries, an in-memory bus, a dev issuer, an app."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.ingest.config import AuthSettings, IngestSettings, LimitSettings
from services.runtime.auth import DevIssuer
from services.runtime.bus.api import BusError, Message, TopicSpec

AUDIENCE = "fjo-ingest"
ISSUER = "https://dev.fjo.invalid"
JWKS_URL = "https://issuer.invalid/jwks"
"""Outside dev the settings need a JWKS URL; the tests inject a verifier, so none is fetched."""

FORENAMES = ("Cerys", "Dylan", "Megan", "Rhys", "Ffion", "Osian", "Seren", "Tomos", "Baby")
SURNAMES = ("Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Hughes", "Lewis")
POSTCODES = ("CF10 1AA", "CF24 3DG", "SA1 1NW", "LL57 2DG", "NP20 4AR", "SY23 3BX")

# A value that must never appear in a receipt, a log line or an error: it is a record's content.
CANARY_SURNAME = "Canarywyn"


def child(i: int, *, source: str = "cafcass-cymru", version: int = 1, **over: Any) -> dict:
    """A contract-valid child record, varied by ``i``."""
    rng = random.Random(i)
    record: dict[str, Any] = {
        "source": source,
        "record_id": f"CH-{i:08d}",
        "record_version": version,
        "extracted_at": "2024-05-01T09:30:00Z",
        "case_id": f"CASE-{i // 3:07d}",
        "forename": rng.choice(FORENAMES),
        "surname": rng.choice(SURNAMES),
        "date_of_birth": f"{rng.randint(2005, 2022)}-{rng.randint(1, 12):02d}-"
        f"{rng.randint(1, 28):02d}",
        "sex": rng.choice([1, 2, "female", "M", 9]),
        "address": {
            "line_1": f"{rng.randint(1, 200)} Heol y Frenhines",
            "postcode": rng.choice(POSTCODES),
        },
        "ethnicity": "white-british",
        "living_situation": "with-mother",
    }
    record.update(over)
    return record


@dataclass(frozen=True)
class Delivery:
    """A synthetic NDJSON delivery with the bad lines and their expected error paths."""

    body: bytes
    lines: list[str]
    bad: dict[int, str]  # line number -> field path of the (first) error
    good: int

    @property
    def received(self) -> int:
        return len(self.lines)


BAD_KINDS: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("date_of_birth", {"date_of_birth": "2999-01-01", "surname": CANARY_SURNAME}),
    (
        "address.postcode",
        {"address": {"line_1": "1 Stryd", "postcode": "NOT A CODE"}, "surname": CANARY_SURNAME},
    ),
    ("sex", {"sex": "purple", "surname": CANARY_SURNAME}),
    ("", None),  # not JSON at all
    ("favourite_colour", {"favourite_colour": "blue", "surname": CANARY_SURNAME}),
)


def ndjson_delivery(
    n: int, *, bad_every: int = 0, start: int = 0, source: str = "cafcass-cymru"
) -> Delivery:
    """``n`` child lines; every ``bad_every``-th is broken in one of several ways."""
    lines: list[str] = []
    bad: dict[int, str] = {}
    for k in range(n):
        number = k + 1
        record = child(start + k, source=source)
        if bad_every and number % bad_every == 0:
            path, change = BAD_KINDS[(number // bad_every) % len(BAD_KINDS)]
            bad[number] = path
            if change is None:
                lines.append('{"record_id": "CH-broken", "surname": "' + CANARY_SURNAME + '"')
                continue
            record.update(change)
        lines.append(json.dumps(record, separators=(",", ":")))
    body = ("\n".join(lines) + "\n").encode()
    return Delivery(body, lines, bad, n - len(bad))


def csv_body(records: Sequence[Mapping[str, Any]]) -> bytes:
    """Records as CSV with dotted columns for the address."""
    columns = [
        "record_id",
        "record_version",
        "extracted_at",
        "case_id",
        "forename",
        "surname",
        "date_of_birth",
        "sex",
        "address.line_1",
        "address.postcode",
        "ethnicity",
    ]
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        flat = dict(record)
        address = flat.pop("address", {}) or {}
        flat["address.line_1"] = address.get("line_1", "")
        flat["address.postcode"] = address.get("postcode", "")
        writer.writerow([flat.get(c, "") for c in columns])
    return out.getvalue().encode()


# ----------------------------------------------------------------------------- fake bus


@dataclass
class FakeLog:
    """What an in-memory bus holds: acknowledged messages per topic."""

    messages: list[Message] = field(default_factory=list)
    fail_next_flushes: int = 0
    flushes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, topic: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]


class FakeProducer:
    """Implements the ``Producer`` port in memory; ``flush`` may be told to fail."""

    def __init__(self, log: FakeLog) -> None:
        self._log = log
        self._pending: list[Message] = []
        self.closed = False

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None = None,
    ) -> None:
        if self.closed:
            raise BusError("producer is closed")
        key_bytes = key.encode() if isinstance(key, str) else key
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        norm = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in items)
        self._pending.append(Message(topic, 0, -1, key_bytes, value, norm))

    def flush(self, timeout_s: float | None = None) -> None:
        with self._log.lock:
            self._log.flushes += 1
            if self._log.fail_next_flushes:
                self._log.fail_next_flushes -= 1
                raise BusError("broker did not acknowledge (test)")
            base = len(self._log.messages)
            for i, m in enumerate(self._pending):
                self._log.messages.append(Message(m.topic, 0, base + i, m.key, m.value, m.headers))
            self._pending = []

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()


class FakeBus:
    """Implements the ``Bus`` port for unit tests (producing only)."""

    name = "fake"

    def __init__(self) -> None:
        self.log = FakeLog()
        self.producers: list[FakeProducer] = []
        self.topics: dict[str, TopicSpec] = {}

    def producer(self) -> FakeProducer:
        producer = FakeProducer(self.log)
        self.producers.append(producer)
        return producer

    def consumer(self, group_id: str, topics: Sequence[str]) -> Iterator[Message]:
        raise NotImplementedError

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        for spec in specs:
            self.topics.setdefault(spec.name, spec)

    def topic_meta(self, topic: str) -> object | None:
        return self.topics.get(topic)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- app


def settings_for(
    tmp_path: Path, database_url: str | None = None, *, batch_size: int = 50, **limits: Any
) -> IngestSettings:
    """Settings for a test app: its own database and spool under ``tmp_path``."""
    return IngestSettings(
        environment="test",
        database_url=database_url or f"sqlite+pysqlite:///{tmp_path / 'ingest.db'}",
        spool_dir=tmp_path / "spool",
        auth=AuthSettings(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_url=JWKS_URL,
            dev_key_file=tmp_path / "dev-issuer.pem",
        ),
        limits=LimitSettings(**limits),
        publish_batch_size=batch_size,
    )


def bearer(
    issuer: DevIssuer,
    source: str | None = "cafcass-cymru",
    roles: Sequence[str] = ("partner",),
    subject: str = "cymru-push",
) -> dict[str, str]:
    """Authorization header of a partner token."""
    token = issuer.mint(subject, audience=AUDIENCE, roles=roles, source=source)
    return {"Authorization": f"Bearer {token}"}


def envelopes(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The JSON envelopes of ``messages``."""
    return [json.loads(m.value) for m in messages]
