"""The raw kafka-python transport ceiling of the pipeline's hops (same run, same broker):
relay processes that only poll, send, flush and commit (``python -m bench.pipeline.ceiling``
is one relay)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.bus import CONSUMER_SETTINGS, MAX_RECORDS, PRODUCER_SETTINGS
from bench.pipeline.measure import percentiles, rate
from contracts.topics import (
    INGEST_RECORDS,
    LINK_RESULTS,
    PSEUDONYMISE_LINKAGE_KEYS,
    PSEUDONYMISE_RECORDS,
)

__all__ = ["CEILING_RUNS", "RelayConfig", "relay", "run_ceiling"]

ROOT = Path(__file__).resolve().parents[2]
CEILING_RUNS = 3


@dataclass
class RelayConfig:
    role: str  # pseudonymise | link | access
    bootstrap: str
    group: str
    inputs: list[str]
    topics: dict[str, str]
    records_bytes: int = 800
    keys_bytes: int = 2000
    results_bytes: int = 400
    expected: int = 0
    ready_file: str = ""
    result_file: str = ""
    warm_expected: int = 0  # warm-up records the sink must see before the timed run
    warm_file: str = ""
    timeout_s: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)


def relay(cfg: RelayConfig) -> None:
    """One relay process of the ceiling: poll, send, flush, commit per batch; nothing else."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = KafkaConsumer(
        bootstrap_servers=cfg.bootstrap, group_id=cfg.group, **CONSUMER_SETTINGS
    )
    # Every partition assigned by hand (offsets still committed to the group): a group
    # join can wait minutes for a metadata refresh when it first sees fresh topics empty.
    tps: list[TopicPartition] = []
    for topic in cfg.inputs:
        deadline = time.monotonic() + 60
        while not (partitions := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions known for {topic}")
            time.sleep(0.1)
        tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    producer = (
        KafkaProducer(bootstrap_servers=cfg.bootstrap, **PRODUCER_SETTINGS)
        if cfg.role != "access"
        else None
    )
    payload = os.urandom(max(cfg.records_bytes, cfg.keys_bytes, cfg.results_bytes))
    t = cfg.topics
    pending: dict[bytes, int] = {}
    latencies: list[float] = []
    first = last = seen_first = seen_last = 0.0
    warm_done = 0
    deadline = time.monotonic() + cfg.timeout_s
    try:
        Path(cfg.ready_file).write_text("ready\n")
        while not stop.is_set() and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=100, max_records=MAX_RECORDS)
            if not batches:
                continue
            for records in batches.values():
                for r in records:
                    h = dict(r.headers or ())
                    if h["bench-warm"] == b"0":
                        seen_first = seen_first or time.time()
                        seen_last = time.time()
                    if producer is not None:
                        headers = [
                            (k, h[k])
                            for k in ("bench-id", "bench-t0", "bench-person", "bench-warm")
                        ]
                        if cfg.role == "pseudonymise":
                            producer.send(
                                t["records"],
                                payload[: cfg.records_bytes],
                                key=r.key,
                                headers=headers,
                            )
                            if h["bench-person"] == b"1":
                                producer.send(
                                    t["keys"], payload[: cfg.keys_bytes], key=r.key, headers=headers
                                )
                        else:
                            producer.send(
                                t["results"],
                                payload[: cfg.results_bytes],
                                key=r.key,
                                headers=headers,
                            )
                        continue
                    rid = h["bench-id"]
                    need = pending.get(rid, 2 if h["bench-person"] == b"1" else 1) - 1
                    if need:
                        pending[rid] = need
                        continue
                    pending.pop(rid, None)
                    if h["bench-warm"] == b"1":
                        warm_done += 1
                        if warm_done == cfg.warm_expected and cfg.warm_file:
                            Path(cfg.warm_file).write_text("warm\n")
                        continue
                    now = time.time()
                    first = first or now
                    last = now
                    latencies.append(now * 1000 - float(h["bench-t0"]))
            if producer is not None:
                producer.flush()
            consumer.commit()
            if cfg.role == "access" and len(latencies) >= cfg.expected:
                break
    finally:
        if cfg.result_file:
            Path(cfg.result_file).write_text(
                json.dumps(
                    {
                        "complete": len(latencies),
                        "last": last,
                        "latencies_ms": latencies,
                        "cpu_s": time.process_time(),
                        "seen": [seen_first, seen_last],
                    }
                )
            )
        if producer is not None:
            producer.close()
        consumer.close(autocommit=False)


def run_ceiling(
    bootstrap: str,
    replay: dict[str, Any],
    *,
    work_dir: Path,
    timeout_s: float = 600.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The raw kafka-python transport ceiling for the pipeline's hops, on ``replay``."""
    from services.runtime.bus.kafka import KafkaBus
    from services.runtime.topics import topic_specs

    messages = replay["messages"]
    n = len(messages)
    warm = messages[: min(300, n)]
    tag = uuid.uuid4().hex[:8]
    parts = {s.name: s.partitions for s in topic_specs()}
    topics = {
        "in": (INGEST_RECORDS.name, f"bench.ceiling-{tag}.ingest-records"),
        "records": (PSEUDONYMISE_RECORDS.name, f"bench.ceiling-{tag}.records"),
        "keys": (PSEUDONYMISE_LINKAGE_KEYS.name, f"bench.ceiling-{tag}.linkage-keys"),
        "results": (LINK_RESULTS.name, f"bench.ceiling-{tag}.results"),
    }
    from services.runtime.bus.api import TopicSpec

    bus = KafkaBus(bootstrap, client_id="bench-ceiling")
    try:
        bus.create_topics([TopicSpec(name, parts[src]) for src, name in topics.values()])
    finally:
        bus.close()
    names = {k: v[1] for k, v in topics.items()}
    work_dir.mkdir(parents=True, exist_ok=True)
    relays = {
        "pseudonymise": [names["in"]],
        "link": [names["keys"]],
        "access": [names["records"], names["results"]],
    }
    procs: list[tuple[str, subprocess.Popen[bytes], RelayConfig]] = []
    try:
        for role, inputs in relays.items():
            cfg = RelayConfig(
                role=role,
                bootstrap=bootstrap,
                group=f"bench-ceiling-{tag}-{role}",
                inputs=inputs,
                topics=names,
                records_bytes=int(replay["records_bytes"]),
                keys_bytes=int(replay["keys_bytes"]),
                results_bytes=int(replay["results_bytes"]),
                expected=n,
                ready_file=str(work_dir / f"{role}.ready"),
                result_file=str(work_dir / f"{role}.json"),
                timeout_s=timeout_s,
                warm_expected=len(warm),
                warm_file=str(work_dir / "warm") if role == "access" else "",
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.pipeline.ceiling", json.dumps(cfg.__dict__)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=(work_dir / f"{role}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            procs.append((role, proc, cfg))
        deadline = time.monotonic() + min(120.0, timeout_s)
        for role, proc, cfg in procs:
            while not Path(cfg.ready_file).exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ceiling relay {role} did not start; see {work_dir}")
                time.sleep(0.05)
        producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)

        def send(i: int, key: Any, value: bytes, headers: Any, person: bool, warm: bool) -> None:
            extra = [
                ("bench-id", f"{'w' if warm else ''}{i}".encode()),
                ("bench-t0", repr(time.time() * 1000).encode()),
                ("bench-person", b"1" if person else b"0"),
                ("bench-warm", b"1" if warm else b"0"),
            ]
            producer.send(names["in"], value=value, key=key, headers=[*headers, *extra])

        # A warm-up through every hop first (fresh topics' metadata, connections, fetch
        # sessions), as the pipeline is warmed by the spine before its timed run.
        log(f"bench pipeline: ceiling: relays ready; warming up with {len(warm)} records")
        for i, (key, value, headers, person) in enumerate(warm):
            send(i, key, value, headers, person, True)
        producer.flush()
        while not (work_dir / "warm").exists():
            if time.monotonic() > deadline + timeout_s:
                raise RuntimeError(f"ceiling warm-up did not complete; see {work_dir}")
            time.sleep(0.02)
        log(f"bench pipeline: ceiling: producing {n} records")
        t0 = time.time()
        for i, (key, value, headers, person) in enumerate(messages):
            send(i, key, value, headers, person, False)
        producer.flush()
        produced_s = time.time() - t0
        producer.close()
        sink = next(p for r, p, _c in procs if r == "access")
        sink.wait(timeout=timeout_s)
        result = json.loads((work_dir / "access.json").read_text())
        for role, proc, _cfg in procs:  # the relays write theirs when they stop
            if role != "access":
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
        # When each hop saw the run's first and last timed message (s after the first send).
        seen = {
            role: [round(t - t0, 3) if t else None for t in json.loads(
                (work_dir / f"{role}.json").read_text())["seen"]]
            for role in relays
        }  # fmt: skip
    finally:
        for _role, proc, _cfg in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _role, proc, _cfg in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        _delete_topics(bootstrap, list(names.values()))
    if result["complete"] < n:
        raise RuntimeError(f"ceiling: only {result['complete']} of {n} records completed")
    return {
        "records": n,
        "person_records": sum(1 for m in messages if m[3]),
        "hops": "producer → ingest-records → relay P → records + linkage-keys; keys → relay L "
        "→ results; records + results → sink A",
        "partitions": {k: parts[src] for k, (src, _n) in topics.items()},
        "message_bytes": {
            "in": round(statistics.fmean(len(m[1]) for m in messages)) if messages else 0,
            "records": replay["records_bytes"],
            "keys": replay["keys_bytes"],
            "results": replay["results_bytes"],
        },
        "warm_up_records": len(warm),
        "hops_seen_s": seen,
        "produce_s": round(produced_s, 3),
        "end_to_end_seconds": round(result["last"] - t0, 3),
        "records_per_s": rate(n, result["last"] - t0),
        "latency_ms": {"complete": percentiles(result["latencies_ms"])},
    }


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka import KafkaAdminClient

    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-ceiling-admin")
        try:
            admin.delete_topics(names)
        finally:
            admin.close()


if __name__ == "__main__":
    relay(RelayConfig(**json.loads(sys.argv[1])))
