"""A linkage-key rotation after ``ingest.records.v1`` has expired: re-encoded from the vault.

A small synthetic world goes through pseudonymise and link; then the raw topic's content is
gone (Kafka: its records deleted with the admin client; embedded: its retention enforced a
week on), so no replay is possible; a v2 master key is added and ``reencode`` publishes
every person again from pseudonymise's vault. Link must end with the same ALF for every
person record, every encoding under v2, and a superseding result only where what a
researcher sees changed.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, select

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS
from contracts.records import PERSON_RECORD_TYPES, RecordType
from contracts.services import Service
from contracts.topics import INGEST_RECORDS
from services.link import storage as link_tables
from services.link.bootstrap import build_worker as build_link_worker
from services.pseudonymise.bootstrap import (
    build_vault,
    build_worker,
    load_keyring,
    load_postcodes,
)
from services.pseudonymise.domain import Pseudonymiser
from services.pseudonymise.reencode import reencode
from services.runtime.db import make_engine, make_session_factory
from services.runtime.publishing import frame, publish_all
from synth.world import WorldConfig, build_world
from tests.integration.conftest import Platform
from tests.integration.pipeline import pipeline_settings, random_key, run_until

WEEK_MS = 8 * 24 * 3600 * 1000


def _push_world(platform: Platform) -> tuple[set[str], int]:
    """The world's person records as ingest publishes them: their input event ids, and how
    many are spine people."""
    world = build_world(WorldConfig(seed=7, spine_size=120, cases=10, invalid_per_feed=0))
    messages, ids, spine = [], set(), 0
    for (_source, kind), rows in world.records.items():
        if RecordType(kind) not in PERSON_RECORD_TYPES:
            continue
        for row in rows:
            event = RECORD_RECEIVED_EVENTS[RecordType(kind)].model_validate(
                {"record": row, "delivery_id": "dlv-rotation"}
            )
            event_id = uuid.uuid4()
            spine += kind == RecordType.SPINE_PERSON.value
            ids.add(str(event_id))
            messages.append(frame(event, source=Service.INGEST, event_id=event_id))
    producer = platform.bus.producer()
    publish_all(producer, messages)
    producer.flush()
    producer.close()
    return ids, spine


def _results(engine: Engine) -> dict[str, tuple[str | None, int, float, int]]:
    r = link_tables.results.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.record_token, r.alf, r.status, r.match_probability, r.sequence)
        )
        return {tok: (alf, status, prob, seq) for tok, alf, status, prob, seq in rows}


def _key_versions(engine: Engine) -> dict[str, int]:
    k, s = link_tables.incoming_keys.c, link_tables.spine_records.c
    with engine.connect() as conn:
        incoming = dict(conn.execute(select(k.record_token, k.key_version)).all())
        spine = dict(conn.execute(select(s.record_token, s.key_version)).all())
    return {**incoming, **spine}


def _expire_raw_topic(platform: Platform) -> None:
    """Make ``ingest.records.v1``'s content unavailable, as its retention does."""
    if platform.kafka_bootstrap is None:
        identifiable = platform.bus.identifiable  # type: ignore[attr-defined]
        assert identifiable.enforce_retention(now_ms=int(time.time() * 1000) + WEEK_MS) > 0
        return
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=platform.kafka_bootstrap)
    try:
        parts = [TopicPartition(INGEST_RECORDS.name, p) for p in range(INGEST_RECORDS.partitions)]
        ends = admin.list_partition_offsets(dict.fromkeys(parts, OffsetSpec.LATEST))
        admin.delete_records({tp: info.offset for tp, info in ends.items()})
    finally:
        admin.close()


def test_the_linkage_key_rotates_after_the_raw_topic_expired_with_identical_alfs(
    platform: Platform, tmp_path: Path
) -> None:
    group = uuid.uuid4().hex[:8]
    v1, link_settings = pipeline_settings(platform, tmp_path, group)
    p_engine, l_engine = make_engine(v1.database_url), make_engine(link_settings.database_url)
    try:
        pseudonymise_worker = build_worker(v1, platform.worker_bus(), p_engine)
        link_worker = build_link_worker(link_settings, platform.worker_bus(), l_engine)
        workers = [pseudonymise_worker, link_worker]
        for worker in workers:
            platform.join(worker)
        inputs, spine = _push_world(platform)
        persons = len(inputs)

        def linked() -> bool:  # link holds every person, and a result for each record
            held = _key_versions(l_engine)
            return len(held) == persons and len(_results(l_engine)) == persons - spine

        run_until(workers, linked, "first linkage")
        before = _results(l_engine)
        assert sum(1 for alf, *_ in before.values() if alf) >= len(before) // 2  # links made
        assert set(_key_versions(l_engine).values()) == {1}

        _expire_raw_topic(platform)
        raw = platform.read_everything(INGEST_RECORDS.name)
        assert not {str(Envelope.from_bytes(m.value).event_id) for m in raw} & inputs

        # The rotation: v2 added and current; every person re-encoded from the vault.
        v2 = v1.model_copy(
            update={
                "master_key_files": {
                    **v1.master_key_files,
                    2: random_key(tmp_path / "master-v2.key"),
                },
                "current_key_version": 2,
            }
        )
        pseudonymiser = Pseudonymiser(load_keyring(v2), load_postcodes(v2), version=2)
        producer = platform.bus.producer()
        try:
            result = reencode(
                make_session_factory(p_engine), build_vault(v2), pseudonymiser, producer, page=50
            )
        finally:
            producer.close()
        assert result.published == {"records": persons - spine, "spine": spine}

        run_until(
            [link_worker],
            lambda: set(_key_versions(l_engine).values()) == {2},
            "re-linkage under v2",
        )
        after = _results(l_engine)
    finally:
        for worker in locals().get("workers", []):
            worker.close()
        p_engine.dispose()
        l_engine.dispose()

    assert set(after) == set(before)
    changed = {tok for tok in before if before[tok][:3] != after[tok][:3]}
    assert len(changed) < len(before) // 4  # a few probabilities move with the Bloom keys
    assert {tok: after[tok][0] for tok in after} == {tok: before[tok][0] for tok in before}
    # superseded only where what a researcher sees (ALF, status, probability) changed
    for tok in before:
        assert (after[tok][3] == before[tok][3]) == (tok not in changed), tok
