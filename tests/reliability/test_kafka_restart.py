"""`scripts/kafka.sh restart`: the same broker again, with its data, ids and address."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from services.runtime.bus.kafka import KafkaBus
from tests.reliability.harness import KAFKA_SH, Broker, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.own_broker, pytest.mark.timeout(300)]


def _status(broker: Broker) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FJO_KAFKA_STATE_DIR=str(broker.state_dir))
    return subprocess.run([str(KAFKA_SH), "status"], env=env, capture_output=True, text=True)


def _consume(bus: KafkaBus, group: str, topic: str, want: int) -> list[bytes]:
    consumer = bus.consumer(group, [topic])
    seen = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < want:
            assert time.monotonic() < deadline, f"read {len(seen)} of {want} from {topic}"
            seen.extend(consumer.poll(max_records=want - len(seen), timeout_s=0.5))
        if want == 3:
            consumer.commit(seen[:2])  # the group has read two of three
    finally:
        consumer.close()
    return [m.value for m in seen]


def test_restart_keeps_data_offsets_ids_and_address_also_after_a_crash(
    start_broker: Callable[[str], Broker],
) -> None:
    broker = start_broker("restart")
    config = (broker.state_dir / "server.properties").read_text()
    meta = (broker.state_dir / "data" / "meta.properties").read_text()
    topic, group = f"restart-{uuid.uuid4().hex[:8]}", "restart-group"
    bus = KafkaBus(broker.bootstrap)
    producer = bus.producer()
    for i in range(3):
        producer.publish(topic, f"m{i}".encode(), key="k")  # one key: one partition, in order
    producer.close()
    assert _consume(bus, group, topic, 3) == [b"m0", b"m1", b"m2"]
    bus.close()

    broker.restart()  # raises if the address changed
    assert _status(broker).returncode == 0
    # a crash (SIGKILL, no clean shutdown), then restart again on the same data
    pid = int((broker.state_dir / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    broker.restart()

    assert (broker.state_dir / "server.properties").read_text() == config  # ports, node id
    assert (broker.state_dir / "data" / "meta.properties").read_text() == meta  # cluster id
    assert [r.value for r in read_topic(broker.bootstrap, topic)] == [b"m0", b"m1", b"m2"]
    bus = KafkaBus(broker.bootstrap)
    try:
        assert _consume(bus, group, topic, 1) == [b"m2"], "the group's committed offset survived"
    finally:
        bus.close()


def test_restart_with_nothing_to_restart_fails_and_starts_nothing(tmp_path: Path) -> None:
    env = dict(os.environ, FJO_KAFKA_STATE_DIR=str(tmp_path / "kafka"))
    done = subprocess.run([str(KAFKA_SH), "restart"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "nothing to restart" in done.stderr
    assert not (tmp_path / "kafka" / "kafka.pid").exists()
