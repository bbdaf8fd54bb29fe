"""N link workers in one consumer group give exactly the results of one.

The same spine, then the same incoming records, go through one link worker and through three
link workers sharing the consumer group and the link database (each in its own thread, as
separate replicas would run), on the embedded bus with SQLite and on Kafka with PostgreSQL.
One of the three is stopped mid-stream and a fresh replica started in its place (a restart:
it rebuilds its spine view, the group rebalances twice). Every record's ALF, status,
probability and model version must be those of the single worker, and each record must have
been published as often. Then objections arrive (spine people, and a few records): every
replica excludes the same people at the same spine-log position, and each record they touch
is re-decided at the last exclusion touching it, so the withdrawn links (``OBJECTED``) and
every other record's ALF, status, probability and model version are again those of the
single worker, each result published once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkResultPublished, LinkStatus, PersonObjected, RecordObjected
from contracts.services import Service
from contracts.topics import LINK_RESULTS, PSEUDONYMISE_LINKAGE_KEYS
from services.link.bootstrap import build_worker
from services.link.config import LinkSettings
from services.runtime.bus.api import Bus, TopicSpec
from services.runtime.db import make_engine
from services.runtime.delivery import EVENT_ID_HEADER, Worker
from services.runtime.publishing import OutgoingMessage, frame, publish_all
from tests.integration.conftest import Platform
from tests.unit.link.fakes import keys, linkage_event, population

pytestmark = pytest.mark.timeout(600)

SPINE = 360
PARTITIONS = 6


def _workload() -> tuple[list[Any], list[Any]]:
    """A spine of households, and incoming records: most of them spine people with the damage
    court records carry (typos, a nickname, a day/month swap, an old address), some not on
    the spine at all."""
    spine = population(SPINE, seed=11)
    incoming = []
    for i, person in enumerate(spine[::5]):
        t = person.tokens
        given = str(t["forename"]).split(":", 1)[1]
        surname = str(t["surname"]).split(":", 1)[1]
        dob = str(t["dob_full"]).split(":", 1)[1]
        sex = str(t["sex"]).split(":", 1)[1]
        postcode = str(t["postcode_unit"]).split(":", 1)[1]
        if i % 4 == 1:
            surname = surname[:-1] + "x"  # a typo
        if i % 4 == 2:
            y, m, d = dob.split("-")
            if int(d) <= 12:
                dob = f"{y}-{d}-{m}"  # day and month swapped
        if i % 4 == 3:
            postcode = "LL11 1ZZ"  # moved since
        incoming.append(keys(f"C{i:04d}", given, surname, dob, sex, postcode))
    for i in range(12):  # not on the spine
        incoming.append(keys(f"N{i:04d}", "gwenllian", "ap-rhys", f"19{40 + i}-02-0{i % 9 + 1}"))
    return (
        [linkage_event(r, "spine-person") for r in spine],
        [linkage_event(r, "child" if i % 2 else "adult-party") for i, r in enumerate(incoming)],
    )


@dataclass
class Replicas:
    """Link workers of one group, each in its own thread with its own bus client."""

    platform: Platform
    settings: LinkSettings
    make_bus: Callable[[], Bus]
    engine: Engine
    running: dict[int, tuple[Worker, threading.Event, threading.Thread, Engine]] = field(
        default_factory=dict
    )
    errors: list[BaseException] = field(default_factory=list)
    _next: int = 0

    def start(self) -> int:
        engine = make_engine(self.settings.database_url)
        worker = build_worker(self.settings, self.make_bus(), engine)
        worker.poll_timeout_s = 0.2
        stop = threading.Event()

        def run() -> None:
            try:
                worker.run(stop)
            except BaseException as exc:  # reported by the test, not lost in the thread
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=f"link-replica-{self._next}", daemon=True)
        thread.start()
        self.running[self._next] = (worker, stop, thread, engine)
        self._next += 1
        return self._next - 1

    def stop(self, n: int) -> None:
        _worker, stop, thread, engine = self.running.pop(n)
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), f"replica {n} did not stop"
        engine.dispose()

    def stop_all(self) -> None:
        for n in list(self.running):
            self.stop(n)

    def count(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())

    def settle(self, sql: str, quiet_s: float = 3.0, timeout_s: float = 240) -> None:
        """Wait until ``sql``'s count has not changed for ``quiet_s``."""
        deadline, last, since = time.monotonic() + timeout_s, -1, time.monotonic()
        while True:
            assert not self.errors, self.errors
            now, value = time.monotonic(), self.count(sql)
            if value != last:
                last, since = value, now
            elif now - since >= quiet_s:
                return
            assert now < deadline, f"{sql}: still changing after {timeout_s:.0f} s"
            time.sleep(0.2)

    def wait(self, what: str, done: Callable[[], bool], timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"{what}: not done in {timeout_s:.0f} s"
            time.sleep(0.2)


def _objections(spine: list[Any], incoming: list[Any]) -> list[RecordObjected]:
    """Objections for every fiftieth spine person (each has a record among the incoming) and
    every fifteenth incoming record (the same ones in every run: receipt ids derive from the
    token)."""
    people = [(e, "spine-person", "person", "wds") for e in spine[::50]]
    records = [(e, e.record_type.value, "record", "cafcass-cymru") for e in incoming[::15]]
    return [
        RecordObjected(
            receipt_id=uuid.uuid5(uuid.NAMESPACE_URL, e.record_token),
            kind="objection",
            subject=subject,
            record_token=e.record_token,
            record_type=kind,
            source=source,
        )
        for e, kind, subject, source in people + records
    ]


def _publish(bus: Bus, topic: str, events: list[Any]) -> None:
    producer = bus.producer()
    messages: list[OutgoingMessage] = [
        frame(e, source=Service.PSEUDONYMISE, event_id=uuid.uuid4(), topic=topic) for e in events
    ]
    publish_all(producer, messages)
    producer.flush()
    producer.close()


def _run(platform: Platform, tmp_path: Path, replicas: int, *, restart_one: bool) -> dict:
    spine, incoming = _workload()
    tag = uuid.uuid4().hex[:8]
    topic = f"{PSEUDONYMISE_LINKAGE_KEYS.name}.replicas-{tag}"
    results_topic = f"{LINK_RESULTS.name}.replicas-{tag}"
    platform.bus.create_topics(
        [TopicSpec(topic, partitions=PARTITIONS), TopicSpec(results_topic, partitions=PARTITIONS)]
    )
    alf_key = tmp_path / f"alf-{tag}.key"
    alf_key.write_text("9" * 64)  # both runs link under one ALF key, so their ALFs compare
    settings = LinkSettings(
        database_url=platform.db_url(f"link-{tag}"),
        worker_group=f"link-{tag}",
        alf_key_file=alf_key,
        input_topic=topic,
        output_topic=results_topic,
    )
    engine = make_engine(settings.database_url)
    if platform.kafka_bootstrap is None:
        make_bus: Callable[[], Bus] = lambda: platform.bus  # noqa: E731
    else:
        from services.runtime.bus.kafka import KafkaBus

        bootstrap = platform.kafka_bootstrap

        def make_bus() -> Bus:
            bus = KafkaBus(
                bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=2000, linger_ms=2
            )
            platform._worker_buses.append(bus)
            return bus

    group = Replicas(platform, settings, make_bus, engine)
    try:
        for _ in range(replicas):
            group.start()
        # The spine first, and drained, as the partners send it: decisions depend on the
        # spine a record meets, in one worker as in three.
        _publish(platform.bus, topic, spine)
        group.wait(
            "spine stored",
            lambda: group.count("SELECT count(*) FROM link_spine_records") == len(spine),
        )
        _publish(platform.bus, topic, incoming[: len(incoming) // 2])
        if restart_one:
            group.wait(
                "some records linked",
                lambda: group.count("SELECT count(*) FROM link_results") >= len(incoming) // 4,
            )
            group.stop(0)
            group.start()
        _publish(platform.bus, topic, incoming[len(incoming) // 2 :])
        group.wait(
            "every record linked",
            lambda: group.count("SELECT count(*) FROM link_results") == len(incoming),
        )
        time.sleep(2)  # anything still to publish (a re-link) is published by now
        final = _final(engine)
        published = _published(platform, results_topic, len(incoming))
        objections = _objections(spine, incoming)
        # The spine people's objections one after another, each in the log before the next
        # is sent: the log is then in one order in both runs (concurrent changes on two
        # partitions enter it in the order their consumers commit, at one worker as at
        # three). Nothing waits for the re-decisions: the owners follow at their own pace.
        people = [o for o in objections if o.subject.value == "person"]
        for n, objection in enumerate(people, start=1):
            _publish(platform.bus, topic, [objection])
            group.wait(
                f"person {n} excluded",
                lambda n=n: (
                    group.count("SELECT count(*) FROM link_spine_log WHERE kind = 'exclude'") == n
                ),
            )
        _publish(platform.bus, topic, [o for o in objections if o.subject.value != "person"])
        group.wait(
            "every partition's records checked up to the log's head",
            lambda: (
                group.count("SELECT min(spine_position) FROM link_partitions")
                == group.count("SELECT position FROM link_log_head")
            ),
        )
        group.settle(f"SELECT count(*) FROM link_results WHERE status = {int(LinkStatus.OBJECTED)}")
        group.settle("SELECT coalesce(sum(sequence), 0) FROM link_results")
    finally:
        group.stop_all()
    after = _final(engine)
    engine.dispose()
    people_objected: Counter[str] = Counter()
    results: dict[str, dict[int, set[str]]] = {}
    last: dict[str, tuple[Any, ...]] = {}
    for m in platform.read_everything(results_topic, at_least=len(incoming)):
        event = parse_data(Envelope.from_bytes(m.value))
        if isinstance(event, PersonObjected):
            people_objected[event.alf] += 1
            continue
        assert isinstance(event, LinkResultPublished)
        ids = results.setdefault(event.record_token, {}).setdefault(event.sequence, set())
        ids.add((m.header(EVENT_ID_HEADER) or b"").decode())
        if event.sequence >= max(results[event.record_token]):
            last[event.record_token] = (
                event.alf,
                int(event.status),
                event.match_probability,
                event.model_version,
            )
    # Each result published once: one event per sequence, no sequence missing, and the last
    # one published is the one stored. How many results a record went through after the
    # objections is not compared between runs: a record two objections touch is decided
    # at each that its owner's view stops at, and where a view stops is timing; the last
    # decision (at the last objection touching it) is the same.
    for tok, by_sequence in results.items():
        assert sorted(by_sequence) == list(range(1, len(by_sequence) + 1)), (tok, by_sequence)
        assert all(len(ids) == 1 for ids in by_sequence.values()), (tok, by_sequence)
    assert last == after
    return {
        "final": final,
        "published": published,
        "linked": sum(1 for alf, *_ in final.values() if alf),
        # After the objections: the full result. A spine change after records were linked
        # re-decides each record it touches at the log position of the last change touching
        # it, whichever replica owns it and however far its view moved in one step.
        "after": after,
        "objected": sum(1 for _, status, *_ in after.values() if status == LinkStatus.OBJECTED),
        "people_objected": people_objected,
    }


def _final(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        return {
            r.record_token: (r.alf, int(r.status), r.match_probability, r.model_version)
            for r in conn.execute(
                text(
                    "SELECT record_token, alf, status, match_probability, model_version "
                    "FROM link_results"
                )
            )
        }


def _published(platform: Platform, results_topic: str, at_least: int) -> Counter[str]:
    published: dict[str, set[str]] = {}
    for m in platform.read_everything(results_topic, at_least=at_least):
        event = parse_data(Envelope.from_bytes(m.value))
        assert isinstance(event, LinkResultPublished)
        published.setdefault(event.record_token, set()).add(
            (m.header(EVENT_ID_HEADER) or b"").decode()
        )
    return Counter({t: len(ids) for t, ids in published.items()})


def test_three_link_workers_one_of_them_restarted_give_the_results_of_one(
    platform: Platform, tmp_path: Path
) -> None:
    one = _run(platform, tmp_path, 1, restart_one=False)
    three = _run(platform, tmp_path, 3, restart_one=True)
    assert one["linked"] > len(one["final"]) // 2, "the workload links most records"
    differ = {
        t: (one["final"].get(t), three["final"].get(t))
        for t in set(one["final"]) | set(three["final"])
        if one["final"].get(t) != three["final"].get(t)
    }
    first = dict(sorted(differ.items())[:3])
    assert not differ, (
        f"{len(differ)} of {len(one['final'])} records differ (linked: {one['linked']} by one "
        f"worker, {three['linked']} by three); for example {first}"
    )
    assert three["published"] == one["published"]
    # Objections withdrew links: records of their own, and those linked to excluded people.
    spine, incoming = _workload()
    assert one["objected"] >= len(incoming[::15])
    assert three["after"] == one["after"]
    assert three["people_objected"] == one["people_objected"]
    assert len(one["people_objected"]) == len(spine[::50])
