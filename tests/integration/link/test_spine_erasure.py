"""An erased spine person's keyed encodings leave link's spine log, history, records and
snapshots, on SQLite and on PostgreSQL, while every replica still agrees on who left.

Two replicas of one consumer group share the database and a snapshot folder, each owning
one input partition, driven as the worker drives them (``prepare`` before a batch, the
batch's writes in one transaction). The person's versions stay in the log until every
partition's records have been checked past the exclusion (they tell each owner which records
the exclusion touched); then they are rewritten without encodings, the next snapshot
written leaves the person out, and older snapshots are deleted. A replica started from an
old snapshot, from the new one, or from the log alone does not bring the person back.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from contracts.events import LinkStatus, RecordObjected
from services.link.bootstrap import MIGRATIONS, VERSION_TABLE
from services.link.service import LinkService
from services.link.snapshots import Snapshots
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.migrations import upgrade
from services.runtime.publishing import publish_all
from tests.unit.link.fakes import fake_token, keys, linkage_event, population

TOPIC = "pseudonymise.linkage-keys.v1"
PERSON = ("aled", "bevan", "2001-03-04", "M", "LL57 1AB")
ERASED = fake_token("S1")


class Dropped:
    """A producer that drops what it is given (the results are read from the database)."""

    def publish(self, topic: str, value: bytes, *, key=None, headers=None) -> None:
        return None

    def flush(self, timeout_s: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None


class Replica:
    def __init__(self, url: str, name: str, partitions: set[int], snapshots: Path) -> None:
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        self.partitions = partitions
        self.service = LinkService(
            b"k" * 32,
            input_topic=TOPIC,
            owner=name,
            snapshots=Snapshots(snapshots, min_rows=1),
        )
        with transaction(self.sessions) as s:
            self.service.start(s, owns_everything=False)

    def prepare(self) -> None:
        self.service.prepare(self.sessions, Dropped(), self.partitions)

    def run(self, events: list[tuple[object, int]]) -> None:
        with transaction(self.sessions) as s:
            self.service.begin_run(s, {p for _, p in events})
            out = []
            for event, partition in events:
                if isinstance(event, RecordObjected):
                    out += self.service.on_record_objected(s, event)
                else:
                    out += self.service.on_linkage_keys(s, event, partition=partition)
            publish_all(Dropped(), out)
        self.service.run_committed()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def _erasure() -> RecordObjected:
    return RecordObjected(
        receipt_id=uuid.uuid5(uuid.NAMESPACE_URL, "S1/erasure"),
        kind="erasure",
        subject="person",
        record_token=ERASED,
        record_type="spine-person",
        source="wds",
    )


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    """The test's replicas, their engines disposed after it (no connection left to GC)."""
    started: list[Replica] = []
    yield started
    for r in started:
        r.engine.dispose()


def test_an_erased_spine_person_leaves_the_log_history_records_and_snapshots(
    db_url: str, tmp_path: Path, replicas: list[Replica]
) -> None:
    def replica(name: str, partitions: set[int], snapshots: Path) -> Replica:
        replicas.append(Replica(db_url, name, partitions, snapshots))
        return replicas[-1]

    engine = make_engine(db_url)
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    engine.dispose()
    folder = tmp_path / "snapshots"
    a = replica("a", {0}, folder)
    b = replica("b", {1}, folder)
    a.prepare(), b.prepare()
    spine = [(linkage_event(r, "spine-person"), 0) for r in population(90)]
    person = keys("S1", *PERSON, "3 ffordd", "")
    moved = keys("S1", *PERSON[:4], "LL11 1ZZ", "9 stryd", "")
    a.run([*spine, (linkage_event(person, "spine-person"), 0)])
    a.run([(linkage_event(moved, "spine-person", version=2), 0)])
    a.prepare(), b.prepare()
    assert a.service.snapshot_if_due() is not None  # a snapshot holding the person
    old = sorted(folder.iterdir())
    kept = tmp_path / "old-snapshot"
    shutil.copytree(old[-1], kept / old[-1].name)
    b.run([(linkage_event(keys("C1", *PERSON)), 1)])  # linked to the person, owned by B
    a.run([(linkage_event(keys("C2", "gwen", "ap-rhys", "1950-02-03", "F")), 0)])
    linked = _rows(
        db_url, f"SELECT alf FROM link_results WHERE record_token = '{fake_token('C1')}'"
    )
    assert linked[0][0] is not None

    a.run([(_erasure(), 0)])
    person_sql = f"SELECT kind, payload FROM link_spine_log WHERE record_token = '{ERASED}'"
    for table in ("link_spine_history", "link_spine_records"):
        held = _rows(db_url, f"SELECT count(*) FROM {table} WHERE record_token = '{ERASED}'")
        assert held == [(0,)], table
    a.prepare()
    # B has not checked its records past the exclusion: the versions stay in the log.
    assert sorted(k for k, _ in _rows(db_url, person_sql)) == ["exclude", "person", "person"]
    b.prepare()  # withdraws C1, and every partition is now past the exclusion
    c1 = _rows(db_url, f"SELECT status FROM link_results WHERE record_token = '{fake_token('C1')}'")
    assert c1 == [(int(LinkStatus.OBJECTED),)]
    entries = _rows(db_url, person_sql)
    assert sorted(k for k, _ in entries) == ["erased", "erased", "exclude"]
    for kind, payload in entries:
        if kind == "erased":
            assert payload == "{}"
        else:  # the tombstone: the request, no encoding
            assert set(json.loads(payload)) == {"kind", "receipt_id"}
    assert "bevan" not in str(entries) and fake_token("bevan") not in str(entries)

    # The snapshot on disk from before holds the person: the next one replaces it.
    a.prepare()
    written = a.service.snapshot_if_due()
    assert written is not None
    left = sorted(folder.iterdir())
    assert left == [written], left
    erased_at = a.service.erasures[ERASED]
    assert Snapshots.position_of(written) >= erased_at
    loaded = Snapshots(folder).latest(a.service.view.model)
    assert loaded is not None and not loaded.holds_any([ERASED])
    assert a.service.snapshot_if_due() is None  # nothing left to supersede

    # Replicas started from the new snapshot, from the old one, and from the log alone.
    starts = {
        "new snapshot": replica("c", {0}, folder),
        "old snapshot": replica("d", {0}, kept),
        "log alone": replica("e", {0}, tmp_path / "none"),
    }
    for name, r in starts.items():
        view = r.service.view
        assert ERASED in view.excluded, name
        assert view.index.position_of(ERASED) is None, name
        assert view.position == a.service.view.position, name
        probe = keys("S1-probe", *PERSON)
        decision = view.linker.link(probe)
        assert decision.spine_id != ERASED, name
    assert not starts["new snapshot"].service.view.index.holds_any([ERASED])
    assert not starts["log alone"].service.view.index.holds_any([ERASED])
    # Every replica decides a record as the others do, whichever way it started.
    probe = keys("C3", *PERSON[:3], "F", "LL57 1AB")
    decisions = {
        name: r.service.view.linker.link(probe) for name, r in {**starts, "a": a, "b": b}.items()
    }
    assert len({(d.spine_id, d.status, round(d.probability, 6)) for d in decisions.values()}) == 1
