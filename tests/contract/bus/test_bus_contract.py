"""The bus contract: every backend orders per key, shares partitions in a group, keeps
committed offsets across a crash, redelivers what was not committed and carries headers."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.runtime.bus.api import Bus, BusError, Message, TopicSpec
from services.runtime.bus.records import partition_for_key
from tests.contract.bus._support import (
    BusSpec,
    consume_until,
    drain,
    ids,
    unique,
    wait_for_assignment,
)

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[3]


def publish_all(bus: Bus, closing: Callable[[Any], Any], topic: str, values: list[str]) -> None:
    producer = closing(bus.producer())
    for i, v in enumerate(values):
        producer.publish(topic, v.encode(), key=f"key-{i % 7}")
    producer.flush()


def test_messages_with_the_same_key_are_consumed_in_the_order_they_were_published(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=4)
    keys, per_key = 25, 40
    producer = closing(bus.producer())
    for seq in range(per_key):
        for k in range(keys):  # interleave every key
            producer.publish(topic, f"{k}:{seq}".encode(), key=f"person-{k}")
    producer.flush()

    consumer = closing(bus.consumer(unique("group"), [topic]))
    got = consume_until(consumer, keys * per_key, max_records=97)
    got += drain(consumer, quiet_s=0.5)

    sequences: dict[str, list[int]] = defaultdict(list)
    partitions: dict[bytes | None, set[int]] = defaultdict(set)
    for m in got:
        k, seq = m.value.decode().split(":")
        sequences[k].append(int(seq))
        partitions[m.key].add(m.partition)
    assert len(got) == keys * per_key
    assert {k: seqs for k, seqs in sequences.items()} == {
        str(k): list(range(per_key)) for k in range(keys)
    }
    assert all(len(p) == 1 for p in partitions.values())


def test_a_key_lands_on_the_partition_kafkas_default_partitioner_picks(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=6)
    producer = closing(bus.producer())
    keys = [f"case-{i}" for i in range(60)]
    for k in keys:
        producer.publish(topic, k.encode(), key=k)
    producer.flush()
    consumer = closing(bus.consumer(unique("group"), [topic]))
    got = consume_until(consumer, len(keys))
    assert sorted(ids(got)) == sorted(keys)
    assert {m.value.decode(): m.partition for m in got} == {
        k: partition_for_key(k.encode(), 6) for k in keys
    }


def test_two_consumers_in_one_group_share_the_partitions_and_together_receive_each_message_once(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=4)
    group = unique("group")
    a = closing(bus.consumer(group, [topic]))
    b = closing(bus.consumer(group, [topic]))
    assert wait_for_assignment([a, b], {(topic, p) for p in range(4)}) == []

    values = [f"m-{i}" for i in range(400)]
    publish_all(bus, closing, topic, values)

    received: dict[str, list[Message]] = {"a": [], "b": []}
    for _ in range(200):
        for name, c in (("a", a), ("b", b)):
            batch = c.poll(max_records=50, timeout_s=0.2)
            c.commit(batch)
            received[name] += batch
        if len(received["a"]) + len(received["b"]) >= len(values):
            break
    for name, c in (("a", a), ("b", b)):
        received[name] += drain(c, quiet_s=0.5)

    everything = ids(received["a"]) + ids(received["b"])
    assert sorted(everything) == sorted(values)  # each exactly once, none missing
    assert received["a"] and received["b"]
    assert {m.partition for m in received["a"]}.isdisjoint({m.partition for m in received["b"]})


def test_a_consumer_killed_with_sigkill_is_resumed_by_a_new_consumer_from_the_last_commit(
    bus_spec: BusSpec, bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=3)
    group = unique("group")
    values = [f"m-{i}" for i in range(45)]
    publish_all(bus, closing, topic, values)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.contract.bus._proc",
            "consume-commit-sleep",
            bus_spec.to_json(),
            group,
            topic,
            "17",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        report = json.loads(line)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    committed = {(p, o) for p, o in report["committed"]}
    assert len(committed) == 17
    position = {}
    for p, o in committed:
        position[p] = max(position.get(p, 0), o + 1)

    resumed = closing(bus.consumer(group, [topic]))
    got = consume_until(resumed, len(values) - 17, timeout_s=45)
    got += drain(resumed, quiet_s=1.0)
    seen = [(m.partition, m.offset) for m in got]
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(seen).isdisjoint(committed)  # nothing committed comes back
    assert len(seen) == len(values) - 17  # exactly the uncommitted tail
    assert all(o >= position.get(p, 0) for p, o in seen)


def test_uncommitted_messages_are_redelivered_after_seek_to_committed(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=3)
    values = [f"m-{i}" for i in range(30)]
    publish_all(bus, closing, topic, values)
    consumer = closing(bus.consumer(unique("group"), [topic]))
    first = consume_until(consumer, len(values))
    assert sorted(ids(first)) == sorted(values)
    consumer.commit([m for m in first if m.offset < 2])

    consumer.seek_to_committed()
    again = consume_until(consumer, len(values) - 6)
    again += drain(consumer, quiet_s=0.5)

    assert sorted(ids(again)) == sorted(ids([m for m in first if m.offset >= 2]))


def test_uncommitted_messages_are_redelivered_to_a_new_consumer_that_joins_the_group(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=3)
    group = unique("group")
    values = [f"m-{i}" for i in range(30)]
    publish_all(bus, closing, topic, values)
    first = bus.consumer(group, [topic])
    got = consume_until(first, len(values))
    committed = [m for m in got if m.offset < 3]
    first.commit(committed)
    first.close()

    second = closing(bus.consumer(group, [topic]))
    again = consume_until(second, len(values) - len(committed))
    again += drain(second, quiet_s=0.5)
    assert sorted(ids(again)) == sorted(set(values) - set(ids(committed)))


def test_headers_round_trip_including_binary_values_and_traceparent(
    bus: Bus,
    new_topic: Callable[..., str],
    closing: Callable[[Any], Any],
    span_exporter: tuple[TracerProvider, Any],
) -> None:
    topic = new_topic(partitions=1)
    binary = bytes(range(256))
    explicit = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = [
        ("fjo-type", b"case.recorded.v1"),
        ("blob", binary),
        ("empty", b""),
        ("repeated", b"first"),
        ("repeated", b"second"),
        ("traceparent", explicit.encode()),
    ]
    producer = closing(bus.producer())
    producer.publish(topic, b"explicit", key=b"k", headers=headers)
    producer.publish(topic, b"mapping", key="k", headers={"fjo-type": "x", "utf8": "é"})
    provider, _ = span_exporter
    with provider.get_tracer("test").start_as_current_span("request") as span:
        producer.publish(topic, b"in-span", key=b"k")
    producer.flush()

    consumer = closing(bus.consumer(unique("group"), [topic]))
    got = {m.value: m for m in consume_until(consumer, 3)}

    assert got[b"explicit"].headers == tuple(headers)  # caller's traceparent kept as is
    assert got[b"explicit"].header("repeated") == b"second"
    assert got[b"explicit"].key == b"k"
    assert got[b"mapping"].headers == (("fjo-type", b"x"), ("utf8", "é".encode()))
    ctx = span.get_span_context()
    assert got[b"in-span"].header("traceparent") == (
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode()
    )


def test_flush_raises_bus_error_when_a_record_is_rejected(
    bus: Bus, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1, **{"max.message.bytes": "2000"})
    producer = bus.producer()
    try:
        producer.publish(topic, b"x" * 10_000, key=b"k")
        with pytest.raises(BusError):
            producer.flush(timeout_s=30)
    finally:
        with contextlib.suppress(BusError):
            producer.close()


def test_create_topics_leaves_an_existing_topic_as_it_is(
    bus: Bus, closing: Callable[[Any], Any]
) -> None:
    topic = unique("contract")
    bus.create_topics([TopicSpec(topic, 2)])
    bus.create_topics([TopicSpec(topic, 5), TopicSpec(topic + "-other", 1)])
    producer = closing(bus.producer())
    for i in range(40):
        producer.publish(topic, b"v", key=f"k{i}")
    producer.publish(topic + "-other", b"v")
    producer.flush()
    consumer = closing(bus.consumer(unique("group"), [topic, topic + "-other"]))
    got = consume_until(consumer, 41)
    assert {(m.topic, m.partition) for m in got} == {(topic, 0), (topic, 1), (topic + "-other", 0)}


def test_a_groups_lag_is_each_partitions_end_minus_its_committed_offset(
    bus: Bus, new_topic: Callable[..., str], closing: Callable[[Any], Any]
) -> None:
    topic = new_topic(partitions=3)
    values = [f"m-{i}" for i in range(30)]
    publish_all(bus, closing, topic, values)
    group = unique("group")
    per_partition = {p: 0 for p in range(3)}
    for i in range(len(values)):
        per_partition[partition_for_key(f"key-{i % 7}".encode(), 3)] += 1

    before = bus.consumer_lag(group, [topic])
    assert [(lag.topic, lag.partition) for lag in before] == [(topic, p) for p in range(3)]
    assert [(lag.start, lag.end, lag.committed) for lag in before] == [
        (0, per_partition[p], None) for p in range(3)
    ]
    assert sum(lag.lag for lag in before) == len(values)

    consumer = closing(bus.consumer(group, [topic]))
    got = consume_until(consumer, len(values))
    assert len(got) == len(values)
    # Commit all but the last two records of each partition.
    by_partition: dict[int, list[Message]] = defaultdict(list)
    for m in got:
        by_partition[m.partition].append(m)
    held_back = {p: min(2, len(ms)) for p, ms in by_partition.items()}
    consumer.commit(
        [m for p, ms in by_partition.items() for m in sorted(ms, key=lambda m: m.offset)[:-2]]
    )

    after = {lag.partition: lag for lag in bus.consumer_lag(group, [topic])}
    for p, count in per_partition.items():
        assert after[p].end == count
        assert after[p].lag == held_back.get(p, 0)
        if count > 2:
            assert after[p].committed == count - 2
    # Read-only: another group's lag, and the reading member's assignment, are untouched.
    assert sum(lag.lag for lag in bus.consumer_lag(unique("group"), [topic])) == len(values)
    consumer.commit(got)
    assert [lag.lag for lag in bus.consumer_lag(group, [topic])] == [0, 0, 0]


def test_the_lag_on_a_topic_that_does_not_exist_has_no_partitions(bus: Bus) -> None:
    assert bus.consumer_lag(unique("group"), [unique("missing")]) == []


def test_records_older_than_the_topics_retention_are_dropped_by_time(
    bus_spec: BusSpec, closing: Callable[[Any], Any]
) -> None:
    """``retention.ms`` is time-based on every backend, as on Kafka: old records go whether or
    not a group has read them, newer ones stay, and a new group starts at the oldest kept."""
    options = dict(bus_spec.options)
    if bus_spec.backend == "embedded":
        options["retention_check_s"] = 0.5  # the broker checks every 2 s (scripts/kafka.sh)
    bus = closing(BusSpec(bus_spec.backend, options, bus_spec.label).make())
    topic = unique("retention")
    # segment.ms lets the broker roll (then delete) the segment holding the old records.
    configs = {"cleanup.policy": "delete", "retention.ms": "3000", "segment.ms": "500"}
    bus.create_topics([TopicSpec(topic, 1, configs)])
    producer = closing(bus.producer())
    for i in range(5):
        producer.publish(topic, f"old-{i}".encode(), key="k")
    producer.flush()
    [fresh] = bus.consumer_lag(unique("probe"), [topic])
    assert (fresh.start, fresh.end) == (0, 5)  # nothing goes before its time

    time.sleep(3.5)
    deadline = time.monotonic() + 60
    written = 0
    while time.monotonic() < deadline:
        producer.publish(topic, f"new-{written}".encode(), key="k")
        producer.flush()
        written += 1
        [lag] = bus.consumer_lag(unique("probe"), [topic])
        if lag.start >= 5:
            break
        time.sleep(0.5)
    assert 5 <= lag.start < 5 + written, lag  # every old record went, the newest stayed
    consumer = closing(bus.consumer(unique("reader"), [topic]))
    got = ids(consume_until(consumer, 1, timeout_s=30) + drain(consumer, quiet_s=2.0))
    assert got and got == [f"new-{i}" for i in range(written - len(got), written)], got
