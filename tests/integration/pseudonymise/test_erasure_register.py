"""A record re-sent after its erasure (or objection) is not taken in again, on the embedded
stack and on Kafka with PostgreSQL: pseudonymise neither vaults nor publishes it, settles it
as suppressed with its reason, and what the worker was handed reconciles (processed +
dead-lettered + suppressed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, Table, func, select

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS, ObjectionReceived
from contracts.objections import ObjectionRequest
from contracts.records import PERSON_RECORD_TYPES, RecordType
from contracts.services import Service
from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS, PSEUDONYMISE_RECORDS
from services.pseudonymise.bootstrap import build_pseudonymiser, build_worker
from services.pseudonymise.erasures import erasures
from services.pseudonymise.vault import vault
from services.runtime.db import make_engine
from services.runtime.delivery import Worker, processed_messages
from services.runtime.publishing import OutgoingMessage, frame, publish_all
from services.runtime.worker_status import worker_status
from tests.canaries import CANARIES, canary_records
from tests.integration.conftest import Platform
from tests.integration.pseudonymise.test_pseudonymise_worker import dump_tables, worker_settings
from tests.leakscan import find_leaks


def _publish(platform: Platform, messages: list[OutgoingMessage]) -> None:
    producer = platform.bus.producer()
    publish_all(producer, messages)
    producer.flush()
    producer.close()


def _records(suffix: str) -> list[OutgoingMessage]:
    """Every canary record as ingest publishes it, each time with new event ids (a re-send)."""
    return [
        frame(
            RECORD_RECEIVED_EVENTS[kind](record=record, delivery_id=f"dlv{suffix}"),
            source=Service.INGEST,
            event_id=uuid.uuid4(),
        )
        for kind, record in canary_records(suffix).items()
    ]


def _request(kind: str, record_type: RecordType, record_id: str) -> OutgoingMessage:
    person = record_type is RecordType.SPINE_PERSON
    event = ObjectionReceived(
        receipt_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        request=ObjectionRequest(
            request_id=f"req-{uuid.uuid4().hex[:8]}",
            kind=kind,
            subject="person" if person else "record",
            source="wds" if person else "cafcass-cymru",
            record_type=record_type,
            record_id=record_id,
            reason="data-subject-request",
        ),
    )
    return frame(event, source=Service.INGEST, event_id=uuid.uuid4())


def _settle(worker: Worker, inputs: int) -> None:
    for _ in range(200):
        worker.run_once(timeout_s=0.5)
        s = worker.stats
        if s.processed + s.dead_lettered + s.suppressed + s.skipped_duplicates >= inputs:
            return
    raise AssertionError(f"worker settled {worker.stats} of {inputs}")


def _outcomes(engine: Engine, group: str) -> dict[str, int]:
    c = processed_messages.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.outcome, func.count()).where(c.consumer_group == group).group_by(c.outcome)
        )
        return {outcome: int(n) for outcome, n in rows}


def _count(engine: Engine, table: Table, token: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.record_token == token)
            ).scalar_one()
        )


def test_a_record_re_sent_after_its_erasure_or_objection_is_suppressed_not_stored_again(
    platform: Platform, tmp_path: Path
) -> None:
    suffix = f"-{uuid.uuid4().hex[:6]}"
    settings = worker_settings(platform, tmp_path)
    pseudonymiser = build_pseudonymiser(settings)
    canaries = canary_records(suffix)
    tokens = {
        kind: pseudonymiser.record_token(record.source.value, kind.value, record.record_id)
        for kind, record in canaries.items()
    }
    child, person = tokens[RecordType.CHILD], tokens[RecordType.SPINE_PERSON]
    engine = make_engine(settings.database_url)
    try:
        worker = build_worker(settings, platform.worker_bus(), engine)
        try:
            platform.join(worker)
            _publish(platform, _records(suffix))
            _settle(worker, len(canaries))
            erasure = _request("erasure", RecordType.CHILD, canaries[RecordType.CHILD].record_id)
            objection = _request(
                "objection", RecordType.SPINE_PERSON, canaries[RecordType.SPINE_PERSON].record_id
            )
            _publish(platform, [erasure, objection])
            _settle(worker, len(canaries) + 2)
            # The partner sends everything again, and the erasure event comes again (a
            # producer's retry): skipped by its marker, it registers nothing new.
            _publish(platform, [*_records(suffix), erasure])
            _settle(worker, 2 * len(canaries) + 3)
            status = worker_status(worker)
        finally:
            worker.close()
        outcomes = _outcomes(engine, settings.worker_group)
        held = {kind: _count(engine, vault, token) for kind, token in tokens.items()}
        registered = {kind: _count(engine, erasures, token) for kind, token in tokens.items()}
        db_dump = dump_tables(engine)
    finally:
        engine.dispose()

    # Suppressed, with its reason, durable and the group's (the status page's figures).
    assert status["suppressed"] == {"total": 2, "by_reason": {"erased": 1, "objected": 1}}
    # Received = processed + dead-lettered + suppressed; the repeated erasure (same event
    # id) is skipped by its marker, not counted again.
    assert outcomes == {"processed": 2 * len(canaries), "suppressed": 2}
    assert sum(outcomes.values()) == 2 * len(canaries) + 2
    # The vault holds nothing of the erased child or the objected person, even after the
    # re-send; other person records still have their one version.
    assert held[RecordType.CHILD] == held[RecordType.SPINE_PERSON] == 0
    assert held[RecordType.ADULT_PARTY] == 1
    assert {kind for kind, n in registered.items() if n} == {
        RecordType.CHILD,
        RecordType.SPINE_PERSON,
    }
    assert registered[RecordType.CHILD] == 1

    # Downstream: the erased and objected records' content and keys once (before the
    # request), then the objection, and nothing after it; the others' twice.
    mine = set(tokens.values())
    for topic, kinds in (
        (PSEUDONYMISE_RECORDS.name, set(tokens)),
        (PSEUDONYMISE_LINKAGE_KEYS.name, set(PERSON_RECORD_TYPES)),
    ):
        seen: dict[str, list[str]] = {}
        for m in platform.read_everything(topic, at_least=1):
            envelope = Envelope.from_bytes(m.value)
            if envelope.data.get("record_token") in mine:
                seen.setdefault(envelope.data["record_token"], []).append(envelope.type)
        for kind in kinds:
            events = seen[tokens[kind]]
            if tokens[kind] in (child, person):
                assert events[-1] == "pseudonymise.record-objected.v1", (topic, kind, events)
                assert len(events) == 2, (topic, kind, events)
            else:
                assert len(events) == 2 and "objected" not in " ".join(events), (topic, kind)
    # The register holds no identifier either.
    assert find_leaks(db_dump, CANARIES) == []
