"""The delivery loop on every backend: each record's effect happens exactly once, failures are
retried then dead-lettered without holding up later records, and traces cross the bus."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from services.runtime import probe
from services.runtime.bus.api import Bus, Message, TopicSpec
from services.runtime.db import make_engine, make_session_factory
from services.runtime.delivery import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_ERROR_TYPE,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    EVENT_ID_HEADER,
    TYPE_HEADER,
    Batch,
    Suppressed,
    Worker,
    WorkerConfig,
    create_runtime_tables,
)
from services.runtime.worker_status import worker_status
from tests.contract.bus._support import (
    EVENT_TYPE,
    BusSpec,
    consume_until,
    drain,
    effects,
    effects_metadata,
    record_effect,
    unique,
)

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def effects_engine(effects_url: str) -> Iterator[Engine]:
    engine = make_engine(effects_url)
    create_runtime_tables(engine)
    effects_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(effects_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(effects_engine)


def effect_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(effects.c.message_id).order_by(effects.c.id)).scalars().all()
        )


def run_until(worker: Worker, done: Callable[[], bool], *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"worker did not finish: {worker.stats}"
        worker.run_once(timeout_s=0.3)


def dead_letters(topic: str) -> str:
    """These tests' own dead-letter naming (services take theirs from the topic registry)."""
    return f"{topic}.dlq"


def config(group: str, topic: str, **pacing: Any) -> WorkerConfig:
    """A worker on ``topic`` in ``group``, dead letters to ``dead_letters(topic)``."""
    return WorkerConfig(group, (topic,), dead_letters(topic), **pacing)


def make_topics(bus: Bus, partitions: int = 1) -> tuple[str, str]:
    topic = unique("delivery")
    dlq = dead_letters(topic)
    bus.create_topics([TopicSpec(topic, partitions), TopicSpec(dlq, 1)])
    return topic, dlq


def publish_events(bus: Bus, topic: str, values: list[str], *, event_ids: bool = True) -> None:
    producer = bus.producer()
    for i, v in enumerate(values):
        headers = {TYPE_HEADER: EVENT_TYPE}
        if event_ids and i % 2 == 0:  # half by event id, half by position
            headers[EVENT_ID_HEADER] = f"evt-{v}"
        producer.publish(topic, v.encode(), key=f"k{i % 5}", headers=headers)
    producer.close()


def test_trace_context_propagates_from_the_publishing_span_to_the_handler_span(
    bus: Bus,
    sessions: sessionmaker[Session],
    span_exporter: tuple[TracerProvider, Any],
    closing: Callable[[Any], Any],
) -> None:
    provider, exporter = span_exporter
    topic, _ = make_topics(bus)
    producer = bus.producer()
    with provider.get_tracer("test").start_as_current_span("partner request") as request_span:
        producer.publish(topic, b"traced", key="k", headers={TYPE_HEADER: EVENT_TYPE})
    producer.close()

    seen: list[tuple[int, int]] = []

    def handler(session: Session, message: Message) -> None:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        seen.append((ctx.trace_id, ctx.span_id))
        record_effect(session, message)

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic),
            sessions,
            handlers={EVENT_TYPE: handler},
            tracer_provider=provider,
        )
    )
    run_until(worker, lambda: worker.stats.processed == 1)

    parent = request_span.get_span_context()
    consumer_spans = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(consumer_spans) == 1
    span = consumer_spans[0]
    assert span.context.trace_id == parent.trace_id
    assert span.parent is not None and span.parent.span_id == parent.span_id
    assert span.attributes["messaging.destination.name"] == topic
    assert seen == [(span.context.trace_id, span.context.span_id)]  # handler ran inside it


def test_a_failing_message_is_dead_lettered_after_max_attempts_while_later_messages_flow(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, dlq = make_topics(bus)
    secret = "poison-NHS-9434765919"
    values = ["m-0", secret, "m-2", "m-3", "m-4"]
    publish_events(bus, topic, values)
    calls: Counter[str] = Counter()

    def handler(session: Session, message: Message) -> None:
        calls[message.value.decode()] += 1
        if b"poison" in message.value:
            raise ValueError(f"cannot handle {message.value.decode()}")
        record_effect(session, message)

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=3, retry_backoff_s=0.01),
            sessions,
            handlers={EVENT_TYPE: handler},
        )
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.dead_lettered == 5)
    worker.run_once(timeout_s=0.5)  # nothing more may arrive

    assert effect_ids(effects_engine) == ["m-0", "m-2", "m-3", "m-4"]
    assert calls[secret] == 3
    assert worker.stats.failed_attempts == 3
    assert worker.stats.dead_lettered == 1
    assert worker.stats.processed == 4

    reader = closing(bus.consumer(unique("dlq-reader"), [dlq]))
    dead = consume_until(reader, 1) + drain(reader, quiet_s=0.5)
    assert [m.value for m in dead] == [secret.encode()]
    letter = dead[0]
    assert letter.header(DLQ_ERROR_TYPE) == b"builtins.ValueError"
    assert letter.header(DLQ_ATTEMPTS) == b"3"
    assert letter.header(DLQ_ORIGINAL_TOPIC) == topic.encode()
    assert letter.header(DLQ_ORIGINAL_PARTITION) == b"0"
    assert letter.header(DLQ_ORIGINAL_OFFSET) == b"1"
    assert letter.header(TYPE_HEADER) == EVENT_TYPE.encode()  # original headers kept
    error = letter.header(DLQ_ERROR)
    assert error is not None and error.startswith(b"cannot handle")
    for _, value in letter.headers:
        assert secret.encode() not in value  # never the record's value
        assert b"9434765919" not in value


def test_an_undecodable_message_goes_straight_to_the_dead_letter_topic(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, dlq = make_topics(bus)
    producer = bus.producer()
    producer.publish(topic, b"\xff\xfe not an event", key="k")  # no type header at all
    producer.publish(topic, b"unknown", key="k", headers={TYPE_HEADER: "nobody.handles.v9"})
    producer.publish(topic, b"fine", key="k", headers={TYPE_HEADER: EVENT_TYPE})
    producer.close()
    calls: list[bytes] = []

    def handler(session: Session, message: Message) -> None:
        calls.append(message.value)
        record_effect(session, message)

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=5, retry_backoff_s=0.01),
            sessions,
            handlers={EVENT_TYPE: handler},
        )
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.dead_lettered == 3)

    assert calls == [b"fine"]
    assert worker.stats.failed_attempts == 2  # one attempt each, no retries
    reader = closing(bus.consumer(unique("dlq-reader"), [dlq]))
    dead = consume_until(reader, 2) + drain(reader, quiet_s=0.5)
    assert [(m.value, m.header(DLQ_ATTEMPTS)) for m in dead] == [
        (b"\xff\xfe not an event", b"1"),
        (b"unknown", b"1"),
    ]
    assert {m.header(DLQ_ERROR_TYPE) for m in dead} == {b"services.runtime.delivery.PoisonMessage"}


def test_a_transient_failure_is_retried_in_order_before_later_messages_of_its_partition(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, _ = make_topics(bus)
    values = [f"m-{i}" for i in range(6)]
    publish_events(bus, topic, values)
    failures = {"m-2": 2}

    def handler(session: Session, message: Message) -> None:
        v = message.value.decode()
        if failures.get(v, 0) > 0:
            failures[v] -= 1
            raise TimeoutError("downstream busy")
        record_effect(session, message)

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=3, retry_backoff_s=0.01),
            sessions,
            handlers={EVENT_TYPE: handler},
        )
    )
    run_until(worker, lambda: worker.stats.processed == 6)

    assert effect_ids(effects_engine) == values
    assert worker.stats.failed_attempts == 2
    assert worker.stats.dead_lettered == 0


unique_metadata = MetaData()
unique_names = Table(
    "contract_unique_names", unique_metadata, Column("name", String(50), unique=True)
)


def test_a_write_that_violates_a_constraint_fails_only_its_own_record_not_its_batch(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    unique_metadata.create_all(effects_engine)
    topic, dlq = make_topics(bus)
    values = ["alpha", "beta", "alpha", "gamma"]  # the second "alpha" breaks the constraint
    publish_events(bus, topic, values, event_ids=False)

    def handler(session: Session, message: Message) -> None:
        session.execute(insert(unique_names).values(name=message.value.decode()))

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=2, retry_backoff_s=0.01),
            sessions,
            handlers={EVENT_TYPE: handler},
        )
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.dead_lettered == 4)

    with effects_engine.connect() as conn:
        names = conn.execute(select(unique_names.c.name)).scalars().all()
    assert sorted(names) == ["alpha", "beta", "gamma"]
    assert (worker.stats.processed, worker.stats.dead_lettered) == (3, 1)
    assert worker.stats.batch_failures == 0
    reader = closing(bus.consumer(unique("dlq-reader"), [dlq]))
    dead = consume_until(reader, 1) + drain(reader, quiet_s=0.5)
    assert [(m.value, m.header(DLQ_ORIGINAL_OFFSET)) for m in dead] == [(b"alpha", b"2")]
    assert dead[0].header(DLQ_ERROR_TYPE) == b"sqlalchemy.exc.IntegrityError"


def test_run_processes_until_the_stop_event_is_set_and_then_leaves_the_group(
    bus: Bus, effects_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    topic, _ = make_topics(bus, partitions=2)
    values = [f"m-{i}" for i in range(10)]
    publish_events(bus, topic, values)
    worker = Worker(
        bus,
        config(unique("group"), topic, poll_timeout_s=0.2),
        sessions,
        handlers={EVENT_TYPE: record_effect},
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(effect_ids(effects_engine)) < len(values) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(effect_ids(effects_engine)) == sorted(values)
    assert worker.stats.as_dict()["processed"] == len(values)


def test_a_record_published_twice_with_the_same_event_id_has_its_effect_once(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, _ = make_topics(bus, partitions=3)
    producer = bus.producer()
    for _ in range(2):  # e.g. a partner re-sent the delivery
        for i in range(5):
            producer.publish(
                topic,
                f"m-{i}".encode(),
                key=f"k{i}",
                headers={TYPE_HEADER: EVENT_TYPE, EVENT_ID_HEADER: f"evt-{i}"},
            )
    producer.close()
    worker = closing(
        Worker(bus, config(unique("group"), topic), sessions, handlers={EVENT_TYPE: record_effect})
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.skipped_duplicates == 10)

    assert sorted(effect_ids(effects_engine)) == [f"m-{i}" for i in range(5)]
    assert worker.stats.skipped_duplicates == 5


def test_a_worker_killed_between_db_commit_and_offset_commit_applies_each_effect_exactly_once(
    bus_spec: BusSpec,
    bus: Bus,
    effects_url: str,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, _ = make_topics(bus, partitions=3)
    group = unique("group")
    values = [f"m-{i}" for i in range(24)]
    publish_events(bus, topic, values)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.contract.bus._proc",
            "worker-crash",
            bus_spec.to_json(),
            effects_url,
            group,
            topic,
            "6",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    killed_batch = json.loads(out)["killed_after"]
    before_restart = effect_ids(effects_engine)
    assert 6 <= len(before_restart) < len(values)

    worker = closing(
        Worker(
            bus, config(group, topic, max_batch=4), sessions, handlers={EVENT_TYPE: record_effect}
        )
    )
    run_until(worker, lambda: len(effect_ids(effects_engine)) >= len(values))
    worker.run_once(timeout_s=1.0)  # a late duplicate would show up here

    assert Counter(effect_ids(effects_engine)) == Counter(values)  # each exactly once
    assert worker.stats.skipped_duplicates == len(killed_batch)  # it was redelivered
    assert worker.stats.processed == len(values) - len(before_restart)


def batch_effect(sizes: list[int]) -> Callable[[Session, Batch], None]:
    """A batch handler under test: one statement for the whole run, one span per record."""

    def handle(session: Session, batch: Batch) -> None:
        sizes.append(len(batch.messages))
        ids = []
        for m in batch.messages:
            with batch.span(m):
                if m.value.startswith(b"poison"):
                    raise ValueError("cannot handle this one")
                ids.append(m.value.decode())
        session.execute(insert(effects), [{"message_id": i} for i in ids])

    return handle


def test_a_batch_handler_takes_runs_of_records_and_each_effect_happens_once(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    span_exporter: tuple[TracerProvider, Any],
    closing: Callable[[Any], Any],
) -> None:
    provider, exporter = span_exporter
    topic, _ = make_topics(bus, partitions=3)
    values = [f"b-{i}" for i in range(40)]
    publish_events(bus, topic, values)
    publish_events(bus, topic, values[:10])  # the same events again: skipped by event id
    sizes: list[int] = []
    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic),
            sessions,
            batch_handlers={EVENT_TYPE: batch_effect(sizes)},
            tracer_provider=provider,
        )
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.skipped_duplicates >= 50)
    worker.run_once(timeout_s=1.0)

    # The 5 re-sent events with an event id are duplicates; the 5 without are new records.
    assert Counter(effect_ids(effects_engine)) == Counter(values + values[1:10:2])
    assert worker.stats.skipped_duplicates == 5
    assert max(sizes) > 1, sizes  # handed over in runs, not one by one
    spans = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(spans) == 45  # one per handled record, none for the skipped ones


def test_a_failing_run_falls_back_to_one_at_a_time_and_only_the_poison_is_dead_lettered(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, dlq = make_topics(bus)
    values = ["ok-1", "ok-2", "poison-3", "ok-4", "ok-5"]
    publish_events(bus, topic, values)
    sizes: list[int] = []
    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=2, retry_backoff_s=0.01),
            sessions,
            batch_handlers={EVENT_TYPE: batch_effect(sizes)},
        )
    )
    run_until(worker, lambda: worker.stats.processed + worker.stats.dead_lettered == 5)

    assert Counter(effect_ids(effects_engine)) == Counter(v for v in values if v != "poison-3")
    assert sizes[0] == 5  # the whole run first, rolled back, then one at a time
    assert worker.stats.dead_lettered == 1
    reader = closing(bus.consumer(unique("dlq-reader"), [dlq]))
    dead = consume_until(reader, 1)
    assert [m.value for m in dead] == [b"poison-3"]
    assert dead[0].header(DLQ_ERROR) == b"cannot handle this one"


def suppressing_batch_effect(sizes: list[int]) -> Callable[[Session, Batch], None]:
    """``batch_effect``, except that records starting with "erased" are suppressed."""
    inner = batch_effect(sizes)

    def handle(session: Session, batch: Batch) -> None:
        for m in batch.messages:
            if m.value.startswith(b"erased"):
                batch.suppress(m, "erased")
        kept = [m for m in batch.messages if not m.value.startswith(b"erased")]
        if kept:
            inner(session, Batch(kept, batch.span))

    return handle


def suppressing_effect(session: Session, message: Message) -> None:
    """``record_effect`` one at a time, suppressing "erased..." and failing "poison..."."""
    if message.value.startswith(b"erased"):
        raise Suppressed("erased")
    if message.value.startswith(b"poison"):
        raise ValueError("cannot handle this one")
    record_effect(session, message)


@pytest.mark.parametrize("batched", [True, False], ids=["batch", "one-at-a-time"])
def test_a_suppressed_record_has_no_effect_is_not_dead_lettered_and_is_counted_by_reason(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
    batched: bool,
) -> None:
    topic, dlq = make_topics(bus)
    # A poison record in the same run: the run fails, goes one at a time, and the
    # suppression holds on that path too.
    values = ["erased-0", "ok-1", "erased-2", "ok-3", "poison-4", "ok-5"]
    publish_events(bus, topic, values)
    publish_events(bus, topic, ["erased-2"])  # the same event again: skipped by its marker
    sizes: list[int] = []
    group = unique("group")
    handlers: dict[str, Any] = (
        {"batch_handlers": {EVENT_TYPE: suppressing_batch_effect(sizes)}}
        if batched
        else {"handlers": {EVENT_TYPE: suppressing_effect}}
    )
    worker = closing(
        Worker(
            bus, config(group, topic, max_attempts=1, retry_backoff_s=0.01), sessions, **handlers
        )
    )

    def settled() -> bool:
        s = worker.stats
        return s.processed + s.dead_lettered + s.suppressed == 6 and s.skipped_duplicates == 1

    run_until(worker, settled)

    assert Counter(effect_ids(effects_engine)) == Counter(["ok-1", "ok-3", "ok-5"])
    if batched:
        # The whole run first (its four not suppressed reach the effect); the poison sends
        # it one at a time.
        assert sizes[0] == 4
    assert (worker.stats.processed, worker.stats.suppressed, worker.stats.dead_lettered) == (
        3,
        2,
        1,
    )
    status = worker_status(worker)
    assert status["suppressed"] == {"total": 2, "by_reason": {"erased": 2}}
    assert status["dead_letters"]["total"] == 1
    reader = closing(bus.consumer(unique("dlq-reader"), [dlq]))
    assert [m.value for m in consume_until(reader, 1)] == [b"poison-4"]  # no erased one


def test_the_idle_task_runs_after_an_empty_poll_and_its_failure_does_not_stop_the_worker(
    bus: Bus,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, _ = make_topics(bus)
    calls: list[int] = []

    def idle() -> None:
        calls.append(len(calls))
        raise RuntimeError("an idle task that fails")

    worker = closing(Worker(bus, config(unique("group"), topic), sessions, on_idle=idle))
    assert worker.run_once(timeout_s=0.2) == 0
    assert worker.run_once(timeout_s=0.2) == 0
    assert calls == [0, 1]
    publish_events(bus, topic, ["after-idle"])
    worker.handlers[EVENT_TYPE] = record_effect
    run_until(worker, lambda: worker.stats.processed == 1)


def test_before_batch_sees_each_polled_batch_first_and_a_failure_only_delays_it(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    topic, _ = make_topics(bus)
    values = [f"b-{i}" for i in range(4)]
    publish_events(bus, topic, values)
    seen: list[list[str]] = []
    fail = {"left": 2}

    def before(messages: list[Message]) -> None:
        seen.append([m.value.decode() for m in messages])
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("the service could not prepare")

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, retry_backoff_s=0.01),
            sessions,
            handlers={EVENT_TYPE: record_effect},
            before_batch=before,
        )
    )
    run_until(worker, lambda: worker.stats.processed == 4)

    assert effect_ids(effects_engine) == values
    assert worker.stats.dead_lettered == 0 and worker.stats.failed_attempts == 0
    assert len(seen) >= 3 and all(batch for batch in seen)
    assert seen[0][0] == seen[1][0] == "b-0"  # the failed batch came again


def test_a_handler_raising_retry_batch_rolls_the_batch_back_and_counts_no_attempt(
    bus: Bus,
    effects_engine: Engine,
    sessions: sessionmaker[Session],
    closing: Callable[[Any], Any],
) -> None:
    from services.runtime.delivery import RetryBatch

    topic, _ = make_topics(bus)
    values = [f"r-{i}" for i in range(5)]
    publish_events(bus, topic, values)
    refusals = {"left": 2}

    def handle_run(session: Session, batch: Batch) -> None:
        for m in batch.messages:
            record_effect(session, m)
        if refusals["left"]:
            refusals["left"] -= 1
            raise RetryBatch("lost the partition meanwhile")

    worker = closing(
        Worker(
            bus,
            config(unique("group"), topic, max_attempts=1, retry_backoff_s=0.01),
            sessions,
            batch_handlers={EVENT_TYPE: handle_run},
        )
    )
    run_until(worker, lambda: worker.stats.processed == 5)

    assert effect_ids(effects_engine) == values  # each effect once: the refused runs rolled back
    assert worker.stats.dead_lettered == 0 and worker.stats.failed_attempts == 0
    assert worker.stats.batch_failures == 2


def test_a_workers_status_counts_its_lag_and_its_dead_letters_by_topic_and_reason(
    bus: Bus, sessions: sessionmaker[Session], closing: Callable[[Any], Any]
) -> None:
    topic, dlq = make_topics(bus)
    secret = "poison-NHS-9434765919"
    publish_events(bus, topic, ["m-0", secret, "m-2"])
    producer = bus.producer()
    producer.publish(topic, b"no type", key="k")  # a PoisonMessage, dead-lettered at once
    producer.close()
    group = unique("group")

    def handler(session: Session, message: Message) -> None:
        if b"poison" in message.value:
            raise ValueError(f"cannot handle {message.value.decode()}")
        record_effect(session, message)

    def worker() -> Worker:
        return closing(
            Worker(
                bus,
                config(group, topic, max_attempts=2, retry_backoff_s=0.01),
                sessions,
                handlers={EVENT_TYPE: handler},
            )
        )

    first = worker()
    server = closing(probe.start_probe_server(0))
    url = f"http://127.0.0.1:{server.port}/status"
    assert httpx.get(url).status_code == 404  # no worker to describe yet
    probe.serve_status(lambda: worker_status(first))
    before = httpx.get(url).json()
    assert before["group"] == group and before["lag"]["total"] == 4
    assert before["dead_letters"]["total"] == 0

    run_until(first, lambda: first.stats.processed + first.stats.dead_lettered == 4)
    status = httpx.get(url).json()
    assert status["lag"] == {
        "total": 0,
        "partitions": [{"topic": topic, "partition": 0, "committed": 4, "end": 4, "lag": 0}],
    }
    assert status["dead_letters"]["dead_letter_topic"] == dlq
    assert status["dead_letters"]["by_topic"] == {topic: 2}
    assert status["dead_letters"]["by_reason"] == {
        "builtins.ValueError": 1,
        "services.runtime.delivery.PoisonMessage": 1,
    }
    assert "9434765919" not in json.dumps(status)

    # A restarted worker (a new object on the same database): the markers keep both dead
    # letters and their reasons.
    first.close()
    again = worker()
    probe.serve_status(lambda: worker_status(again))
    restarted = httpx.get(url).json()["dead_letters"]
    assert restarted["total"] == 2
    assert restarted["by_reason"] == status["dead_letters"]["by_reason"]

    def broken() -> dict[str, object]:
        raise ConnectionError("bus down")

    server.set_status(broken)
    down = httpx.get(url)
    assert (down.status_code, down.json()) == (503, {"status": "unavailable: ConnectionError"})


def test_two_replicas_report_the_groups_dead_letters_by_reason_which_add_up_to_their_own(
    bus: Bus, sessions: sessionmaker[Session], closing: Callable[[Any], Any]
) -> None:
    topic, _ = make_topics(bus, partitions=2)
    values = [f"poison-{i}" if i % 3 == 0 else f"m-{i}" for i in range(12)]
    publish_events(bus, topic, values)
    producer = bus.producer()
    for i in range(2):  # PoisonMessage (no type), one per partition key
        producer.publish(topic, b"no type", key=f"k{i}")
    producer.close()
    group = unique("group")

    def handler(session: Session, message: Message) -> None:
        if message.value.startswith(b"poison"):
            raise ValueError("cannot handle it")
        record_effect(session, message)

    replicas = [
        closing(
            Worker(
                bus,
                config(group, topic, max_attempts=1, max_batch=3, poll_timeout_s=0.2),
                sessions,
                handlers={EVENT_TYPE: handler},
            )
        )
        for _ in range(2)
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in replicas]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            settled = sum(w.stats.processed + w.stats.dead_lettered for w in replicas)
            if settled >= len(values) + 2:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    expected = {"builtins.ValueError": 4, "services.runtime.delivery.PoisonMessage": 2}
    reports = [worker_status(w)["dead_letters"] for w in replicas]
    # Whichever replica answers, the group's counts; what each replica settled adds up to them.
    assert [r["by_reason"] for r in reports] == [expected, expected]
    assert [r["total"] for r in reports] == [6, 6]
    assert sum(w.stats.dead_lettered for w in replicas) == 6
