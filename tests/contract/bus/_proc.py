"""Subprocess roles for the crash tests: ``python -m tests.contract.bus._proc ROLE SPEC ...``.

Each role prints one JSON line to stdout when it reached the state the test waits for.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from services.runtime.bus.api import Message
from tests.contract.bus._support import EVENT_TYPE, BusSpec, record_effect


def _say(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def consume_commit_sleep(spec: BusSpec, group: str, topic: str, n: int) -> None:
    """Commit exactly the first ``n`` messages polled, report them, then hang until killed."""
    bus = spec.make()
    consumer = bus.consumer(group, [topic])
    got: list[Message] = []
    while len(got) < n:
        got += consumer.poll(max_records=5, timeout_s=0.5)
    committed = got[:n]
    consumer.commit(committed)
    _say({"committed": [[m.partition, m.offset] for m in committed], "polled": len(got)})
    while True:  # stay a live group member (background heartbeats) until SIGKILL
        time.sleep(0.2)


def worker_crash(spec: BusSpec, effects_url: str, group: str, topic: str, kill_after: int) -> None:
    """Run a Worker and SIGKILL this process right after a DB commit, before the offset commit."""
    from services.runtime.db import make_engine, make_session_factory
    from services.runtime.delivery import Worker, WorkerConfig

    bus = spec.make()
    factory = make_session_factory(make_engine(effects_url))
    settled_total = 0

    def after_db_commit(settled: Sequence[Message]) -> None:
        nonlocal settled_total
        settled_total += len(settled)
        if settled_total >= kill_after:
            _say({"killed_after": [[m.partition, m.offset] for m in settled]})
            os.kill(os.getpid(), signal.SIGKILL)

    worker = Worker(
        bus,
        WorkerConfig(group, (topic,), f"{topic}.dlq", max_batch=4, poll_timeout_s=0.5),
        factory,
        handlers={EVENT_TYPE: record_effect},
        after_db_commit=after_db_commit,
    )
    while True:
        worker.run_once()


def produce(spec: BusSpec, topic: str, key: str, tag: str, count: int, go_file: str) -> None:
    """Once ``go_file`` exists (the parent creates it when every producer is ready, so that
    they overlap whatever the machine's load), publish ``count`` records ``<tag>-<i>`` with
    one key, flushing often (concurrency test)."""
    bus = spec.make()
    producer = bus.producer()
    _say({"ready": tag})
    while not os.path.exists(go_file):
        time.sleep(0.005)
    for i in range(count):
        producer.publish(topic, f"{tag}-{i}".encode(), key=key)
        if i % 7 == 6:
            producer.flush()
            # Let the others at the log: SQLite's busy handler backs off for milliseconds,
            # so on a loaded machine one writer could otherwise finish before they wake.
            time.sleep(0.002)
    producer.close()
    bus.close()
    _say({"done": count})


def main(argv: list[str]) -> None:
    role, spec = argv[0], BusSpec.from_json(argv[1])
    args = argv[2:]
    if role == "consume-commit-sleep":
        consume_commit_sleep(spec, args[0], args[1], int(args[2]))
    elif role == "worker-crash":
        worker_crash(spec, args[0], args[1], args[2], int(args[3]))
    elif role == "produce":
        produce(spec, args[0], args[1], args[2], int(args[3]), args[4])
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
