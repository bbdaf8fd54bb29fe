"""Three link workers, one of them killed (SIGKILL) mid-stream and restarted, give exactly
what one link worker gives: every role its own process, on Kafka with PostgreSQL and on the
embedded stack (SQLite files and the embedded bus).

The same seeded world goes through the platform three times, under the same dev keys (so
record tokens, encodings and ALFs compare): once with one link worker on the embedded stack
(the reference), then with three link workers on each stack. The spine's owner pushes the
spine and the pipeline drains it; Cafcass Cymru pushes its feeds; with three link workers,
``link-worker-2`` is killed as soon as some records are linked, the other feeds are pushed
while it is down, and it is started again. Once access holds every person record's current
link result, each record's ALF, status, probability and model version in link's database
and the number of results published for it must be the same as the reference's. One
reference serves both stacks: a decision depends on the record and the spine log, not on
the bus or the database, so Kafka with PostgreSQL must give the embedded stack's answers
too (and a stack start is most of each run's time).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkResultPublished
from fjo.demo.evaluation import PERSON_TYPES, record_tokens
from fjo.demo.run import ISSUER
from fjo.push_cli import push_file
from fjo.stack.embedded import EmbeddedStack
from fjo.stack.kafka import KafkaStack
from fjo.stack.processes import kill_role, restart_role
from services.runtime.auth import DevIssuer
from services.runtime.delivery import EVENT_ID_HEADER
from synth.world import FEEDS, World, WorldConfig, build_world, write_world
from tests.integration.e2e.story_stack import wait_until
from tests.reliability.harness import Broker

pytestmark = pytest.mark.timeout(900)

WORLD = WorldConfig(seed=4_091_913, spine_size=700, cases=44)
"""About 1,200 valid records (700 on the spine, about 170 court person records)."""
KILLED = "link-worker-2"


@dataclass
class Linked:
    """What link left for every person record of one run."""

    final: dict[tuple[str, str, str], tuple[Any, ...]]
    published: Counter[tuple[str, str, str]]
    owners: set[str] = field(default_factory=set)
    killed_at: int | None = None
    seconds: float = 0.0


class _SharedKeys:
    """A stack whose services keep their dev keys in one folder given from outside, so two
    runs pseudonymise (and link) under the same keys."""

    shared_keys: Path

    @property
    def key_dir(self) -> Path:
        return self.shared_keys


@dataclass
class KafkaRun(_SharedKeys, KafkaStack):
    shared_keys: Path = Path()


class EmbeddedRun(_SharedKeys, EmbeddedStack):
    def __init__(self, state_dir: Path, shared_keys: Path, replicas: dict[str, int]) -> None:
        super().__init__(state_dir, echo=lambda _m: None, replicas=replicas)
        self.shared_keys = shared_keys


def _push(stack: Any, issuer: DevIssuer, files: dict[str, Path], feeds: list[tuple[str, str]]):
    for source, kind in feeds:
        token = issuer.mint(
            f"{source}-uploader", audience="fjo-ingest", roles=["partner"], source=source
        )
        path = files[f"{source}/{kind}"]
        push_file(
            path,
            source=source,
            record_type=kind,
            url=stack.url("ingest-api"),
            token=token,
            part_bytes=64 * 1024,
            # Each run's own upload (the world's files are shared by the runs).
            state_file=stack.state_dir / f"push-{source}-{kind}.json",
        )


def _count(stack: Any, service: str, sql: str) -> int:
    rows = stack.rows(service, sql)
    return int(rows[0][0]) if rows else 0


def _run(stack: Any, world: World, files: dict[str, Path], *, kill: bool) -> Linked:
    t0 = time.monotonic()
    stack.up()
    try:
        tokens = record_tokens(world, stack.key_dir)
        key_of = {tok: key for key, tok in tokens.items()}
        spine = {tok for (s, _k, _i), tok in tokens.items() if s == "wds"}
        persons = {tok for (s, k, _i), tok in tokens.items() if s != "wds" and k in PERSON_TYPES}
        issuer = DevIssuer.from_file(stack.issuer_key, issuer=ISSUER, create=False)

        def drained(what: str, done: Callable[[], bool], progress: Callable[[], Any]) -> None:
            wait_until(what, done, progress, timeout_s=400, problems=stack.exited)

        def indexed() -> int:
            return len(
                spine
                & {r[0] for r in stack.rows("link", "SELECT record_token FROM link_spine_records")}
            )

        _push(stack, issuer, files, [FEEDS[0]])
        drained("the spine is stored", lambda: indexed() == len(spine), indexed)
        # Cafcass Cymru's feeds first; with three workers one dies before England's arrive.
        first = [f for f in FEEDS[1:] if f[0] == FEEDS[1][0]]
        court = first + [f for f in FEEDS[1:] if f not in first]
        _push(stack, issuer, files, first)
        killed_at = None
        if kill:

            def linked() -> int:
                return _count(stack, "link", "SELECT count(*) FROM link_results")

            drained("some records are linked", lambda: linked() >= 10, linked)
            kill_role(stack.state_dir, KILLED)
            killed_at = linked()
        _push(stack, issuer, files, court[len(first) :])
        if kill:
            extra = stack.extra_env() if hasattr(stack, "extra_env") else None
            restart_role(stack.state_dir, KILLED, extra_env=extra, echo=lambda _m: None)

        def current() -> dict[str, int]:
            link = dict(stack.rows("link", "SELECT record_token, sequence FROM link_results"))
            access = dict(
                stack.rows("access", "SELECT record_token, sequence FROM access_link_decisions")
            )
            return {t: link[t] for t in persons if t in link and access.get(t) == link[t]}

        drained(
            "every person record's result reached access",
            lambda: len(current()) == len(persons),
            lambda: len(current()),
        )
        time.sleep(3)  # a late re-link would show now
        assert len(current()) == len(persons)
        final = {
            key_of[t]: (alf, status, round(p, 6), version)
            for t, alf, status, p, version in stack.rows(
                "link",
                "SELECT record_token, alf, status, match_probability, model_version "
                "FROM link_results",
            )
            if t in persons
        }
        ids: dict[str, set[str]] = {}
        for m in stack.read("link.results.v1"):
            event = parse_data(Envelope.from_bytes(m.value))
            assert isinstance(event, LinkResultPublished)
            if event.record_token in persons:
                ids.setdefault(event.record_token, set()).add(
                    (m.header(EVENT_ID_HEADER) or b"").decode()
                )
        owners = {r[0] for r in stack.rows("link", "SELECT owner FROM link_partitions")}
        return Linked(
            final,
            Counter({key_of[t]: len(v) for t, v in ids.items()}),
            owners,
            killed_at,
            time.monotonic() - t0,
        )
    finally:
        stack.down()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, dict[str, Path]]:
    world = build_world(WORLD)
    return world, write_world(world, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev keys every run of this module shares."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def one_worker(
    world: tuple[World, dict[str, Path]], keys: Path, tmp_path_factory: pytest.TempPathFactory
) -> Linked:
    """The reference: one link worker, on the embedded stack, nothing killed."""
    w, files = world
    root = tmp_path_factory.mktemp("embedded-1")
    try:
        return _run(EmbeddedRun(root / "stack", keys, {"link-worker": 1}), w, files, kill=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this module's own (see ``test_story_processes``: another test's
    pseudonymise worker on the shared one would publish this run's records again)."""
    del kafka_bootstrap
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker.start()
    finally:
        broker.stop()


def _compare(one: Linked, three: Linked, persons: int) -> None:
    assert len(one.final) == persons > 100
    assert sum(1 for alf, *_ in one.final.values() if alf) > persons // 2
    differ = {
        k: (one.final.get(k), three.final.get(k))
        for k in one.final.keys() | three.final.keys()
        if one.final.get(k) != three.final.get(k)
    }
    assert not differ, (
        f"{len(differ)} of {persons} records differ, e.g. {sorted(differ.items())[:3]}"
    )
    assert three.published == one.published
    assert three.killed_at is not None and 0 < three.killed_at < persons, "killed mid-stream"
    assert len(three.owners) >= 2, "the records were shared between link workers"


def _persons(world: World) -> int:
    return sum(
        len(rows)
        for (source, kind), rows in world.records.items()
        if source != "wds" and kind in PERSON_TYPES
    )


@pytest.mark.kafka
@pytest.mark.own_broker
@pytest.mark.postgres
def test_on_kafka_three_link_workers_one_killed_give_what_one_gives(
    world: tuple[World, dict[str, Path]],
    one_worker: Linked,
    keys: Path,
    broker: Broker,
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    w, files = world
    stack = KafkaRun(
        tmp_path_factory.mktemp("kafka-3") / "stack",
        broker.bootstrap,
        postgres_url,
        label="fjo-replicas",
        replicas={"link-worker": 3},
        shared_keys=keys,
    )
    three = _run(stack, w, files, kill=True)
    print(f"\nkafka: one worker (embedded) {one_worker.seconds:.0f} s, three {three.seconds:.0f} s")
    _compare(one_worker, three, _persons(w))


def test_on_the_embedded_stack_three_link_workers_one_killed_give_what_one_gives(
    world: tuple[World, dict[str, Path]],
    one_worker: Linked,
    keys: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    w, files = world
    root = tmp_path_factory.mktemp("embedded-3")
    try:
        three = _run(EmbeddedRun(root / "stack", keys, {"link-worker": 3}), w, files, kill=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nembedded: one worker {one_worker.seconds:.0f} s, three {three.seconds:.0f} s")
    _compare(one_worker, three, _persons(w))
