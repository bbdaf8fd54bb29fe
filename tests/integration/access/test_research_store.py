"""The research store through the runtime Worker: join on record token, current link decision,
idempotent under redelivery, bad payloads dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from contracts.envelope import Envelope
from contracts.events.link import LinkResultPublished
from contracts.events.pseudonymise import PseudonymisedRecordPublished
from contracts.topics import ACCESS_DEAD_LETTERS, LINK_RESULTS, PSEUDONYMISE_RECORDS
from services.access.bootstrap import AccessContext, build_context, build_worker
from services.access.handlers import (
    to_link_result,
    to_stored_record,
)
from services.access.storage.models import (
    Base,
    LinkDecisionRow,
    LinkResultRow,
    ResearchRecordRow,
)
from services.access.storage.research_store import apply_link_results, apply_records
from services.runtime.bus.api import TopicSpec
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.delivery import Worker
from tests.integration.access.conftest import settings_for, token

CHILD = token("child-1")
CASE = token("case-1")


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[AccessContext]:
    context = build_context(settings_for(db_url, tmp_path))
    yield context
    context.dispose()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[EmbeddedBus]:
    b = EmbeddedBus(f"sqlite:///{tmp_path / 'bus.db'}")
    b.create_topics(
        [
            TopicSpec(PSEUDONYMISE_RECORDS.name, 2),
            TopicSpec(LINK_RESULTS.name, 2),
            TopicSpec(ACCESS_DEAD_LETTERS.name, 1),
        ]
    )
    yield b
    b.close()


def record(version: int = 1, **kw: Any) -> PseudonymisedRecordPublished:
    data: dict[str, Any] = {
        "record_token": CHILD,
        "record_type": "child",
        "source": "cafcass-cymru",
        "record_version": version,
        "key_version": 1,
        "week_of_birth": "2018-11-19",
        "sex": 2,
        "lsoa": "W01001870",
        "local_authority": "W06000015",
        "related_tokens": {"case": CASE},
        "content": {"ethnicity": "white-british", "living_situation": "with-mother"},
    }
    data.update(kw)
    return PseudonymisedRecordPublished.model_validate(data)


def link(sequence: int, alf: str | None, status: int = 4) -> LinkResultPublished:
    return LinkResultPublished.model_validate(
        {
            "record_token": CHILD,
            "record_type": "child",
            "alf": alf,
            "status": status,
            "match_probability": 0.99 if alf else 0.3,
            "model_version": f"fs-{sequence}",
            "sequence": sequence,
            "supersedes_sequence": sequence - 1 if sequence > 1 else None,
        }
    )


def publish(bus: EmbeddedBus, *events: Any, raw: bytes | None = None) -> None:
    producer = bus.producer()
    for event in events:
        env = Envelope.wrap(event, source=type(event).event_type.split(".")[0])
        topic = (
            PSEUDONYMISE_RECORDS
            if isinstance(event, PseudonymisedRecordPublished)
            else (LINK_RESULTS)
        )
        producer.publish(
            topic.name,
            env.to_bytes(),
            key=event.partition_key(),
            headers={"fjo-event-id": str(env.event_id), "fjo-type": env.type},
        )
    if raw is not None:
        producer.publish(PSEUDONYMISE_RECORDS.name, raw, key=CHILD)
    producer.flush()
    producer.close()


def drain(bus: EmbeddedBus, ctx: AccessContext) -> Worker:
    worker = build_worker(ctx.settings, bus, ctx)
    while worker.run_once(timeout_s=0.2):
        pass
    worker.close()
    return worker


def test_records_and_link_results_join_on_the_record_token(
    ctx: AccessContext, bus: EmbeddedBus
) -> None:
    alf = token("alf-1")
    publish(bus, link(1, alf), record())  # the link may arrive first
    drain(bus, ctx)
    with ctx.sessions() as s:
        rec = s.get(ResearchRecordRow, CHILD)
        decision = s.get(LinkDecisionRow, CHILD)
    assert rec is not None and decision is not None
    assert rec.case_token == CASE and rec.sex == 2 and rec.lsoa == "W01001870"
    assert decision.alf == alf and decision.status_code == 4


def test_a_superseding_result_replaces_the_decision_and_a_late_old_one_does_not(
    ctx: AccessContext, bus: EmbeddedBus
) -> None:
    publish(bus, record(), link(1, token("alf-1")), link(2, token("alf-2")))
    drain(bus, ctx)
    publish(bus, link(1, token("alf-1")), link(3, None, status=99))  # replayed, then unlinked
    drain(bus, ctx)
    with ctx.sessions() as s:
        decision = s.get(LinkDecisionRow, CHILD)
        history = s.execute(select(LinkResultRow.sequence)).scalars().all()
    assert decision is not None
    assert decision.sequence == 3 and decision.alf is None and decision.status_code == 99
    assert sorted(history) == [1, 2, 3]


def test_redelivery_changes_nothing(ctx: AccessContext, bus: EmbeddedBus) -> None:
    publish(bus, record(version=2), link(1, token("alf-1")))
    drain(bus, ctx)
    publish(bus, record(version=1, lsoa="W01000001"), record(version=2), link(1, token("alf-9")))
    worker = drain(bus, ctx)
    with ctx.sessions() as s:
        rec = s.get(ResearchRecordRow, CHILD)
        decision = s.get(LinkDecisionRow, CHILD)
        n_records = len(s.execute(select(ResearchRecordRow.record_token)).all())
    assert rec is not None and decision is not None
    assert rec.record_version == 2 and rec.lsoa == "W01001870"  # the older version is ignored
    assert decision.alf == token("alf-1")  # a result already held is not applied twice
    assert n_records == 1
    assert worker.stats.dead_lettered == 0


def test_one_batch_with_several_versions_and_sequences_keeps_the_newest(
    ctx: AccessContext,
) -> None:
    records = [
        to_stored_record(record(version=2, lsoa="W01000002")),
        to_stored_record(record(version=3, lsoa="W01000003")),
        to_stored_record(record(version=1, lsoa="W01000001")),
    ]
    results = [to_link_result(link(2, token("alf-2"))), to_link_result(link(1, token("alf-1")))]
    with ctx.sessions.begin() as s:
        assert apply_records(s, records) == 1
        assert apply_link_results(s, results + results[:1]) == 1  # a duplicate in the batch
    with ctx.sessions.begin() as s:
        assert apply_records(s, records[:1]) == 0  # version 2 < the stored 3
        assert apply_link_results(s, [to_link_result(link(3, None, status=99))]) == 1
    with ctx.sessions() as s:
        rec = s.get(ResearchRecordRow, CHILD)
        decision = s.get(LinkDecisionRow, CHILD)
        history = s.execute(select(LinkResultRow.sequence)).scalars().all()
    assert rec is not None and rec.record_version == 3 and rec.lsoa == "W01000003"
    assert decision is not None and decision.sequence == 3 and decision.alf is None
    assert sorted(history) == [1, 2, 3]


def test_a_payload_that_breaks_its_contract_is_dead_lettered(
    ctx: AccessContext, bus: EmbeddedBus
) -> None:
    publish(bus, raw=b'{"not": "an envelope"}')
    worker = drain(bus, ctx)
    assert worker.stats.dead_lettered == 1
    with ctx.sessions() as s:
        assert s.execute(select(ResearchRecordRow)).first() is None


def test_the_migrations_build_exactly_the_models_schema(ctx: AccessContext) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    apart = {
        "access_alembic_version",
        "access_checkpoint_alembic_version",
        "access_audit_checkpoints",
    }
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name in apart)]
    assert diff == []
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
