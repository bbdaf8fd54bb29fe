"""The pseudonymise worker on a real bus: records in, content and linkage keys out, no leak."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import MetaData, select

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS
from contracts.records import PERSON_RECORD_TYPES, RecordType
from contracts.services import Service
from contracts.topics import INGEST_RECORDS, PSEUDONYMISE_LINKAGE_KEYS, PSEUDONYMISE_RECORDS
from services.pseudonymise.bootstrap import build_pseudonymiser, build_worker
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.bus.api import Message
from services.runtime.db import make_engine
from services.runtime.publishing import frame, publish_all
from tests.canaries import CANARIES, canary_records
from tests.integration.conftest import Platform
from tests.leakscan import find_leaks


def _settings(platform: Platform, tmp_path: Path) -> PseudonymiseSettings:
    key = tmp_path / "master-v1.key"
    key.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    return PseudonymiseSettings(
        database_url=platform.db_url("pseudonymise"),
        worker_group=f"pseudonymise-{uuid.uuid4().hex[:8]}",
        master_key_files={1: key},
    )


def _push(platform: Platform, suffix: str) -> dict[RecordType, str]:
    """Publish one received-record event per kind, as ingest does; their event ids."""
    producer = platform.bus.producer()
    ids = {}
    messages = []
    for kind, record in canary_records(suffix).items():
        event = RECORD_RECEIVED_EVENTS[kind](record=record, delivery_id=f"dlv{suffix}")
        ids[kind] = str(uuid.uuid4())
        messages.append(frame(event, source=Service.INGEST, event_id=uuid.UUID(ids[kind])))
    publish_all(producer, messages)
    producer.flush()
    producer.close()
    return ids


def _drain(worker, expected: int) -> None:
    processed = 0
    for _ in range(200):
        worker.run_once(timeout_s=0.5)
        processed = worker.stats.processed
        if processed >= expected:
            return
    raise AssertionError(f"worker processed {processed} of {expected}")


def test_each_record_is_split_into_content_and_person_records_into_linkage_keys_without_leaks(
    platform: Platform, tmp_path: Path
) -> None:
    suffix = f"-{uuid.uuid4().hex[:6]}"
    settings = _settings(platform, tmp_path)
    pseudonymiser = build_pseudonymiser(settings)
    tokens = {
        kind: pseudonymiser.record_token("cafcass-cymru" if kind != RecordType.SPINE_PERSON
                                         else "wds", kind.value, record.record_id)
        for kind, record in canary_records(suffix).items()
    }  # fmt: skip
    _push(platform, suffix)
    engine = make_engine(settings.database_url)
    worker = build_worker(settings, platform.bus, engine)
    try:
        _drain(worker, expected=len(tokens))
    finally:
        worker.close()

    mine = set(tokens.values())

    def ours(messages: list[Message]) -> list[Envelope]:
        envelopes = [Envelope.from_bytes(m.value) for m in messages]
        return [e for e in envelopes if e.data["record_token"] in mine]

    raw: list[bytes] = []

    def keep(messages: list[Message]) -> list[Message]:
        raw.extend(m.value for m in messages)
        return messages

    content = ours(
        keep(
            platform.read_all(
                PSEUDONYMISE_RECORDS.name,
                f"check-{uuid.uuid4().hex[:6]}",
                until=lambda seen: len(ours(seen)) >= len(tokens),
            )
        )
    )
    keys = ours(
        keep(
            platform.read_all(
                PSEUDONYMISE_LINKAGE_KEYS.name,
                f"check-{uuid.uuid4().hex[:6]}",
                until=lambda seen: len(ours(seen)) >= len(PERSON_RECORD_TYPES),
            )
        )
    )
    assert {e.data["record_token"] for e in content} == mine
    assert {e.data["record_type"] for e in keys} == {t.value for t in PERSON_RECORD_TYPES}

    by_kind = {e.data["record_type"]: e.data for e in content}
    child = by_kind["child"]
    # joins survive: the child names its case by the case's own token, and the case its child
    assert child["related_tokens"]["case"] == tokens[RecordType.CASE]
    assert by_kind["case"]["content"]["outcomes"][0]["child_token"] == tokens[RecordType.CHILD]
    assert child["week_of_birth"] == "2013-07-29"  # the Monday of the canary's birth week
    assert child["lsoa"] and child["lsoa"].startswith("W01")
    spine_keys = next(e.data for e in keys if e.data["record_type"] == "spine-person")
    assert len(spine_keys["addresses"]) == 2
    assert spine_keys["token_sets"]["previous_surnames"]

    # everything published downstream, not only this test's records, is scanned
    blob = b"\n".join(raw)
    assert find_leaks(blob, CANARIES) == []
    # the service's own database holds markers only, nothing identifying either
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        rows = [json.dumps([list(r) for r in conn.execute(select(t))], default=str)
                for t in meta.sorted_tables]  # fmt: skip
    engine.dispose()
    assert find_leaks("\n".join(rows), CANARIES) == []


def test_a_record_event_that_cannot_be_read_goes_to_the_dead_letter_topic_with_its_reason(
    platform: Platform, tmp_path: Path
) -> None:
    settings = _settings(platform, tmp_path)
    marker = uuid.uuid4().hex
    producer = platform.bus.producer()
    producer.publish(
        INGEST_RECORDS.name,
        b'{"not": "an envelope", "marker": "' + marker.encode() + b'"}',
        key=marker,
        headers={"fjo-type": b"ingest.child-received.v1", "fjo-event-id": marker.encode()},
    )
    producer.flush()
    producer.close()
    engine = make_engine(settings.database_url)
    worker = build_worker(settings, platform.bus, engine)
    try:
        for _ in range(100):
            worker.run_once(timeout_s=0.5)
            if worker.stats.dead_lettered:
                break
    finally:
        worker.close()
        engine.dispose()
    assert worker.stats.dead_lettered >= 1
    dead = platform.read_all(
        "pseudonymise.dead-letters.v1",
        f"check-{uuid.uuid4().hex[:6]}",
        until=lambda seen: any(marker.encode() in m.value for m in seen),
    )
    letter = next(m for m in dead if marker.encode() in m.value)
    assert (letter.header("fjo-dlq-error-type") or b"").endswith(b".PoisonMessage")
    assert b"not a valid record event" in (letter.header("fjo-dlq-error") or b"")
    assert letter.header("fjo-dlq-original-topic") == INGEST_RECORDS.name.encode()
