"""What only the embedded backend must prove itself (Kafka's broker guarantees these):
records and committed offsets survive closing everything, and concurrent producers in
separate processes get dense, gap-free offsets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from services.runtime.bus.api import TopicSpec
from tests.contract.bus._support import BusSpec, consume_until, drain, ids, unique

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_records_and_committed_offsets_survive_closing_and_reopening_the_database(
    embedded_spec: BusSpec,
) -> None:
    topic, group = unique("durable"), unique("group")
    bus = embedded_spec.make()
    bus.create_topics([TopicSpec(topic, 2)])
    producer = bus.producer()
    for i in range(20):
        producer.publish(topic, f"m-{i}".encode(), key=f"k{i % 5}")
    producer.close()
    consumer = bus.consumer(group, [topic])
    first = consume_until(consumer, 20)
    committed = [m for m in first if m.offset < 4]
    consumer.commit(committed)
    consumer.close()
    bus.close()

    reopened = embedded_spec.make()
    try:
        consumer = reopened.consumer(group, [topic])
        tail = consume_until(consumer, 20 - len(committed))
        tail += drain(consumer, quiet_s=0.3)
        assert sorted(ids(tail)) == sorted(set(ids(first)) - set(ids(committed)))

        producer = reopened.producer()
        producer.publish(topic, b"after-restart", key="k0")
        producer.close()
        (new,) = consume_until(consumer, 1)
        same_partition = [m.offset for m in first if m.partition == new.partition]
        assert new.offset == max(same_partition) + 1  # offsets continue densely
        consumer.close()
    finally:
        reopened.close()


def test_concurrent_producers_in_separate_processes_get_dense_offsets_in_publish_order(
    embedded_spec: BusSpec, closing: Callable[[Any], Any], tmp_path: Path
) -> None:
    topic = unique("concurrent")
    bus = closing(embedded_spec.make())
    bus.create_topics([TopicSpec(topic, 1)])
    go = tmp_path / "go"  # created once every writer is ready, so that they overlap
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.contract.bus._proc",
                "produce",
                embedded_spec.to_json(),
                topic,
                "same-key",
                tag,
                "300",
                str(go),
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert "ready" in json.loads(proc.stdout.readline())
    go.touch()
    for proc in procs:
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0
        assert json.loads(out) == {"done": 300}

    consumer = closing(bus.consumer(unique("group"), [topic]))
    got = consume_until(consumer, 900)
    got += drain(consumer, quiet_s=0.3)
    assert [m.offset for m in got] == list(range(900))
    switches = sum(1 for x, y in pairwise(got) if x.value[:1] != y.value[:1])
    assert switches >= 3  # the producers really did interleave
    for tag in ("a", "b", "c"):
        mine = [v for v in ids(got) if v.startswith(f"{tag}-")]
        assert mine == [f"{tag}-{i}" for i in range(300)]
