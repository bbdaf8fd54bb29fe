"""Link replicas sharing one database, interleaved step by step where the races are.

Two (or three) ``LinkService`` instances play replicas of one consumer group on one SQLite
file, each with the partitions the test says it holds, driven exactly as the worker drives
them: ``prepare`` before a batch (own transactions), then the real batch handler inside a
transaction. Each test puts the steps in the order that used to lose a re-link, and checks
the outcome against one service that saw everything in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from sqlalchemy import select, text

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkReason, LinkResultPublished, RecordObjected
from contracts.services import Service
from services.link import storage
from services.link.bootstrap import MIGRATIONS, VERSION_TABLE
from services.link.handlers import make_handlers
from services.link.service import LinkService
from services.runtime.bus.api import Message
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.delivery import Batch, RetryBatch
from services.runtime.migrations import upgrade
from services.runtime.publishing import OutgoingMessage, frame
from tests.unit.link.fakes import fake_token, keys, linkage_event, population

TOPIC = "pseudonymise.linkage-keys.v1"


@dataclass
class Collecting:
    """A producer that keeps what was published (flushed or not)."""

    sent: list[OutgoingMessage] = field(default_factory=list)

    def publish(self, topic: str, value: bytes, *, key=None, headers=None) -> None:
        self.sent.append(OutgoingMessage(topic, str(key), value, tuple(headers or ())))

    def flush(self, timeout_s: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    def results(self) -> list[LinkResultPublished]:
        out = []
        for m in self.sent:
            event = parse_data(Envelope.from_bytes(m.value))
            assert isinstance(event, LinkResultPublished)
            out.append(event)
        return out


@dataclass
class Replica:
    """One replica: its service, the partitions the bus gives it, what it published."""

    name: str
    service: LinkService
    sessions: object
    partitions: set[int]
    producer: Collecting = field(default_factory=Collecting)
    _offset: int = 0

    def prepare(self, *, decisions_ahead: bool = True) -> None:
        self.service.prepare(
            self.sessions, self.producer, self.partitions, decisions_ahead=decisions_ahead
        )

    def run(self, events: Iterable[tuple[object, int]]) -> None:
        """The worker's run: the real batch handler, inside one transaction."""
        messages = []
        for event, partition in events:
            out = frame(event, source=Service.PSEUDONYMISE, event_id=uuid.uuid4(), topic=TOPIC)
            messages.append(
                Message(TOPIC, partition, self._offset, out.key.encode(), out.value, out.headers)
            )
            self._offset += 1
        handler = make_handlers(self.service, self.producer)[
            "pseudonymise.linkage-keys-published.v1"
        ]
        with transaction(self.sessions) as session:
            handler(session, Batch(tuple(messages), lambda _m: nullcontext()))
        self.service.run_committed()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+pysqlite:///{tmp_path / 'link.db'}"
    engine = make_engine(url)
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    engine.dispose()
    return url


def replica(db: str, name: str, partitions: set[int], **kw: object) -> Replica:
    engine = make_engine(db)
    sessions = make_session_factory(engine)
    svc = LinkService(b"k" * 32, input_topic=TOPIC, owner=name, **kw)  # type: ignore[arg-type]
    with transaction(sessions) as s:
        svc.start(s, owns_everything=False)
    return Replica(name, svc, sessions, partitions)


def final(db: str) -> dict[str, tuple]:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT record_token, alf, status, match_probability, sequence FROM link_results")
        ).all()
    engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


SPINE = [linkage_event(r, "spine-person") for r in population(90)]
PERSON_P = keys("S1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB", "3 ffordd", "")
RECORD_R = keys("C1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")


def test_a_record_decided_while_its_person_joins_the_spine_is_still_relinked(db: str) -> None:
    """B decides R against a view without P while A writes P: B's next step re-links R."""
    a, b = replica(db, "a", {0}), replica(db, "b", {1})
    a.prepare(), b.prepare()
    a.run((e, 0) for e in SPINE)
    a.prepare(), b.prepare()
    before = b.service.view.position
    a.run([(linkage_event(PERSON_P, "spine-person"), 0)])  # P: a position B has not seen
    b.run([(linkage_event(RECORD_R), 1)])  # decided at B's view: without P
    first = b.producer.results()
    assert [(e.sequence, e.alf) for e in first] == [(1, None)]
    stored = final(db)[first[0].record_token]
    assert stored[-1] == 1
    b.prepare()  # B's view moves past P; R was decided before it and shares a key with P
    relinked = b.producer.results()[1:]
    assert [(e.sequence, e.reason) for e in relinked] == [(2, LinkReason.SPINE_CHANGED)]
    assert relinked[0].alf is not None
    assert b.service.view.position > before
    b.prepare(), a.prepare()
    assert len(b.producer.results()) == 2 and not a.producer.results()  # once, by its owner


def test_a_spine_change_relinks_each_touched_record_once_by_the_replica_that_owns_it(
    db: str,
) -> None:
    a, b = replica(db, "a", {0}), replica(db, "b", {1})
    a.prepare(), b.prepare()
    a.run((e, 0) for e in SPINE)
    a.prepare(), b.prepare()
    r1 = keys("C1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")
    r2 = keys("C2", "aled", "bevan", "2001-03-04", "M", "LL57 1AB", "3 ffordd")
    a.run([(linkage_event(r1), 0)])
    b.run([(linkage_event(r2), 1)])
    b.run([(linkage_event(PERSON_P, "spine-person"), 1)])  # P arrives through B
    for _ in range(2):
        a.prepare(), b.prepare()
    by_owner = {r.name: [(e.sequence, e.reason) for e in r.producer.results()] for r in (a, b)}
    assert by_owner == {
        "a": [(1, LinkReason.INITIAL), (2, LinkReason.SPINE_CHANGED)],
        "b": [(1, LinkReason.INITIAL), (2, LinkReason.SPINE_CHANGED)],
    }
    assert {v[-1] for v in final(db).values()} == {2}


def test_a_new_owner_carries_on_where_the_old_one_stopped_and_fences_it_out(db: str) -> None:
    a = replica(db, "a", {0, 1})
    a.prepare()
    a.run((e, 0) for e in SPINE)
    a.prepare()
    a.run([(linkage_event(RECORD_R), 1)])
    a.run([(linkage_event(PERSON_P, "spine-person"), 0)])
    # The bus hands partition 1 to B before A has re-checked its records against P.
    b = replica(db, "b", {1})
    b.prepare()
    assert [(e.sequence, e.reason) for e in b.producer.results()] == [(2, LinkReason.SPINE_CHANGED)]
    # A has not noticed: its next write to partition 1 is refused, not dead-lettered.
    late = keys("C9", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")
    with pytest.raises(RetryBatch):
        a.run([(linkage_event(late), 1)])
    a.partitions = {0}  # its next poll: the bus no longer gives it partition 1
    a.prepare()
    token = b.producer.results()[0].record_token
    assert [e.sequence for e in a.producer.results() if e.record_token == token] == [1]
    assert final(db)[token][-1] == 2


def test_replicas_that_both_refit_the_model_at_one_position_agree_on_it(db: str) -> None:
    a, b = replica(db, "a", {0}), replica(db, "b", {1})
    a.run((e, 0) for e in SPINE)
    # Both see a stale model at the same position and fit it, one after the other.
    a.prepare(decisions_ahead=False), b.prepare(decisions_ahead=False)
    assert a.service.view.stale() and b.service.view.stale()
    with transaction(a.sessions) as s:
        a.service._fit(s)
    with transaction(b.sessions) as s:
        b.service._fit(s)
    a.prepare(), b.prepare()
    assert a.service.model_version == b.service.model_version
    assert a.service.view.model_position == b.service.view.model_position  # one change, not two
    a.run([(linkage_event(RECORD_R), 0)])
    b.run([(linkage_event(keys("C2", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")), 1)])
    versions = {e.model_version for r in (a, b) for e in r.producer.results()}
    assert len(versions) == 1 and versions.pop().endswith("-u90")


def test_a_new_model_version_re_decides_every_record_resumably_publishing_only_changes(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.link.service as service_module

    a = replica(db, "a", {0, 1})
    a.prepare()
    a.run((e, 0) for e in SPINE)
    a.prepare()
    people = population(90)
    records = [keys(f"C{i}", *_fields(p, damaged=i % 3 == 0)) for i, p in enumerate(people[::3])]
    a.run((linkage_event(r), i % 2) for i, r in enumerate(records))
    initial = final(db)
    # A trained model (no refit) that asks for more certainty: some links go to review.
    stricter = replace(
        a.service.view.model,
        version="fjo-link-stricter-1",
        thresholds=replace(a.service.view.model.thresholds, accept=0.999999),
        notes={**a.service.view.model.notes, "training": {"note": "test"}},
    )
    monkeypatch.setattr(service_module, "RELINK_CHUNK", 7)
    monkeypatch.setattr(service_module, "BULK_PER_PREPARE", 7)
    deployed = replica(db, "a2", {0, 1}, model=stricter)  # a rolling restart with the file
    deployed.prepare()  # claims (bumping a's epoch) and starts the bulk re-link
    assert 0 < deployed.service.stats["bulk"] < len(records)
    restarted = replica(db, "a3", {0, 1}, model=stricter)  # ... and it crashed meanwhile
    for _ in range(20):
        restarted.prepare()
    after = final(db)
    engine = make_engine(db)
    with engine.connect() as conn:
        behind = conn.execute(
            select(storage.results.c.record_token).where(
                storage.results.c.decided_at < restarted.service.view.model_position
            )
        ).all()
    engine.dispose()
    assert behind == []
    published = deployed.producer.results() + restarted.producer.results()
    changed = {t for t in after if after[t][:3] != initial[t][:3]}
    assert changed, "the stricter model changed some results"
    assert {e.record_token for e in published} == changed
    assert {e.reason for e in published} == {LinkReason.MODEL_RETRAINED}
    assert {e.model_version for e in published} == {"fjo-link-stricter-1"}


def _fields(rec, *, damaged: bool) -> tuple[str, ...]:
    t = rec.tokens
    given = str(t["forename"]).split(":", 1)[1]
    surname = str(t["surname"]).split(":", 1)[1]
    if damaged:
        surname = surname[:-1] + "q"
    return (
        given,
        surname,
        str(t["dob_full"]).split(":", 1)[1],
        str(t["sex"]).split(":", 1)[1],
        str(t["postcode_unit"]).split(":", 1)[1],
    )


def _late_changes(db: str, *, one_at_a_time: bool) -> dict[str, tuple]:
    """A linked world, then spine changes after the records were decided: a new version of
    a person some records link to, unrelated newcomers (they move the prior and the term
    frequencies), and an objection. The owner either follows the log after every change
    or takes all of them at once."""
    a = replica(db, "a", {0})
    a.prepare()
    a.run((e, 0) for e in SPINE)
    a.prepare()
    people = population(90)
    records = [keys(f"C{i}", *_fields(p, damaged=True)) for i, p in enumerate(people[:12])]
    a.run((linkage_event(r), 0) for r in records)
    a.prepare()
    moved = keys("P00001", *_fields(people[1], damaged=False)[:4], "LL11 1ZZ")
    changes: list[object] = [linkage_event(moved, "spine-person", version=2)]
    changes += [
        linkage_event(keys(f"N{i}", "gwenllian", "ap-rhys", f"19{40 + i}-02-0{i + 1}", "F"), k)
        for i, k in enumerate(["spine-person"] * 4)
    ]
    changes.append(
        RecordObjected(
            receipt_id=uuid.uuid5(uuid.NAMESPACE_URL, "P00004"),
            kind="objection",
            subject="person",
            record_token=fake_token("P00004"),
            record_type="spine-person",
            source="wds",
        )
    )
    changes += [
        linkage_event(keys(f"M{i}", "eirlys", "pryce", f"19{60 + i}-03-0{i + 1}", "M"), k)
        for i, k in enumerate(["spine-person"] * 3)
    ]
    for change in changes:
        if isinstance(change, RecordObjected):
            with transaction(a.sessions) as s:
                a.service.on_record_objected(s, change)
        else:
            a.run([(change, 0)])
        if one_at_a_time:
            a.prepare()
    a.prepare()
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT record_token, alf, status, match_probability, model_version, decided_at"
                " FROM link_results"
            )
        ).all()
    engine.dispose()
    assert len(rows) == len(records)
    return {r[0]: tuple(r[1:]) for r in rows}


def test_a_view_taking_late_spine_changes_at_once_decides_as_one_taking_them_one_by_one(
    tmp_path: Path,
) -> None:
    """Each record a late spine change touches is re-decided at the last change that
    touches it, however far its owner's view moves in one step: the same ALF, status,
    probability, model and decision position either way."""
    urls = []
    for name in ("stepped", "at-once"):
        url = f"sqlite+pysqlite:///{tmp_path / f'{name}.db'}"
        engine = make_engine(url)
        upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
        engine.dispose()
        urls.append(url)
    stepped = _late_changes(urls[0], one_at_a_time=True)
    at_once = _late_changes(urls[1], one_at_a_time=False)
    positions = {v[-1] for v in stepped.values()}
    assert len(positions) > 2, "the changes re-decided records at several positions"
    differ = {t: (stepped[t], at_once[t]) for t in stepped if stepped[t] != at_once[t]}
    assert not differ, differ
