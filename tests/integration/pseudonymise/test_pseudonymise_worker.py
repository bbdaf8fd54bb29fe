"""The pseudonymise worker on a real bus: records in, content and linkage keys out, no leak."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import Engine, MetaData, select

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
from tests.canaries import CANARIES, CANARY_TEXT, canary_records
from tests.integration.conftest import Platform
from tests.leakscan import find_leaks
from tests.postcodes import nspl_from_synthetic


def worker_settings(platform: Platform, tmp_path: Path) -> PseudonymiseSettings:
    key = tmp_path / "master-v1.key"
    key.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    kek = tmp_path / "vault-kek-k1.key"
    kek.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    return PseudonymiseSettings(
        database_url=platform.db_url("pseudonymise"),
        worker_group=f"pseudonymise-{uuid.uuid4().hex[:8]}",
        master_key_files={1: key},
        vault_kek_files={"k1": kek},
        postcode_lookup_file=nspl_from_synthetic(tmp_path / "onspd"),
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


def _envelope(message: Message) -> Envelope:
    return Envelope.from_bytes(message.value)


def dump_tables(engine: Engine) -> str:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(
            json.dumps([list(r) for r in conn.execute(select(t))], default=str)
            for t in meta.sorted_tables
        )


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
    settings = worker_settings(platform, tmp_path)
    pseudonymiser = build_pseudonymiser(settings)
    tokens = {
        kind: pseudonymiser.record_token("cafcass-cymru" if kind != RecordType.SPINE_PERSON
                                         else "wds", kind.value, record.record_id)
        for kind, record in canary_records(suffix).items()
    }  # fmt: skip
    engine = make_engine(settings.database_url)
    try:
        worker = build_worker(settings, platform.worker_bus(), engine)
        try:
            platform.join(worker)
            _push(platform, suffix)
            _drain(worker, expected=len(tokens))
        finally:
            worker.close()
        db_dump = dump_tables(engine)
    finally:
        engine.dispose()

    mine = set(tokens.values())
    content_messages = platform.read_everything(PSEUDONYMISE_RECORDS.name, at_least=len(tokens))
    key_messages = platform.read_everything(PSEUDONYMISE_LINKAGE_KEYS.name, at_least=3)
    content = [e for e in map(_envelope, content_messages) if e.data["record_token"] in mine]
    keys = [e for e in map(_envelope, key_messages) if e.data["record_token"] in mine]
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

    # this test's records are scanned for every canary; everything else published downstream
    # (other tests' records, on Kafka) for every canary no legitimate record can contain
    everything_read = [*content_messages, *key_messages]
    ours = b"\n".join(m.value for m in everything_read if _envelope(m).data["record_token"] in mine)
    assert find_leaks(ours, CANARIES) == []
    everything = b"\n".join(m.value for m in everything_read)
    assert find_leaks(everything, CANARY_TEXT) == []
    # the service's own database holds markers only, nothing identifying either
    assert find_leaks(db_dump, CANARIES) == []


def test_a_record_event_that_cannot_be_read_goes_to_the_dead_letter_topic_with_its_reason(
    platform: Platform, tmp_path: Path
) -> None:
    settings = worker_settings(platform, tmp_path)
    marker = uuid.uuid4().hex
    engine = make_engine(settings.database_url)
    worker = build_worker(settings, platform.worker_bus(), engine)
    platform.join(worker)
    producer = platform.bus.producer()
    producer.publish(
        INGEST_RECORDS.name,
        b'{"not": "an envelope", "marker": "' + marker.encode() + b'"}',
        key=marker,
        headers={"fjo-type": b"ingest.child-received.v1", "fjo-event-id": marker.encode()},
    )
    producer.flush()
    producer.close()
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
