"""Bus throughput: our backends against the raw kafka-python ceiling, in the same run.

For each backend (``raw-kafka``: plain KafkaProducer/KafkaConsumer; ``kafka``: our KafkaBus;
``embedded-sqlite``: our EmbeddedBus on a SQLite file) it measures, with realistic ~860-byte
envelopes (a child record as ingest publishes it) and the same topic layout:

* produce: publish N records then flush, msgs/s;
* consume: one new group member reads the N back (timed from the poll that returned the
  first record, so the group join is reported apart), msgs/s; also with a commit per poll;
* end-to-end: a consumer already in its group while N are published, msgs/s from the first
  publish to the last delivery, with p50/p99 latency from record timestamps;
* client CPU µs per record for produce and consume: on a shared machine the wall-clock rates
  move with other load, the CPU cost of our layer much less.

``run_bus_benchmark`` returns the figures and writes ``bench/results/bus-<ts>.json`` and
``bus-latest.json``; ``python -m bench.bus --help`` runs it from a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from bench._common import environment, local_service, write_result
from services.runtime.bus.api import Bus, TopicSpec
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.bus.kafka import KafkaBus

__all__ = [
    "CONSUMER_SETTINGS",
    "MAX_RECORDS",
    "PRODUCER_SETTINGS",
    "default_bootstrap",
    "run_bus_benchmark",
]

ROOT = Path(__file__).resolve().parents[1]

# The same producer settings for raw kafka-python and for KafkaBus, so the ratio is fair.
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
}
CONSUMER_SETTINGS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 2000,
}
MAX_RECORDS = 500


@dataclass(frozen=True)
class Workload:
    """Pre-built records (built before any clock starts)."""

    keys: list[bytes]
    values: list[bytes]
    headers: list[list[tuple[str, bytes]]]

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def mean_bytes(self) -> float:
        return statistics.fmean(len(v) for v in self.values[:1000])


def _template() -> tuple[bytes, str, str]:
    """One realistic envelope: a child record as ingest publishes it."""
    try:
        from contracts import ChildRecordReceived, Envelope, examples_of
        from contracts.records import ChildRecord

        event = ChildRecordReceived(
            record=examples_of(ChildRecord)[0], delivery_id="dlv-2024-05-01-0001", line_number=17
        )
        env = Envelope.wrap(
            event,
            source="ingest",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            delivery_id="dlv-2024-05-01-0001",
        )
        return env.to_bytes(), str(env.event_id), "CH-2019-000123"
    except Exception:  # contracts changed shape: fall back to an equivalent dict
        event_id = "6f1c1f5e-3f43-4a51-9a39-0d1f2b8d2a11"
        doc = {
            "event_id": event_id,
            "type": "ingest.child-received.v1",
            "source": "ingest",
            "time": "2024-05-01T09:31:02.120000Z",
            "partition_key": "cafcass-cymru/child/CH-2019-000123",
            "schema_version": 1,
            "data": {
                "record": {
                    "source": "cafcass-cymru",
                    "record_id": "CH-2019-000123",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "case_id": "CASE-2019-004567",
                    "forename": "Cerys",
                    "middle_names": "Angharad",
                    "surname": "Jones",
                    "date_of_birth": "2018-11-20",
                    "sex": 2,
                    "nhs_number": "9434765919",
                    "address": {"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"},
                    "ethnicity": "white-british",
                    "disability": False,
                    "living_situation": "with-mother",
                    "additional_needs": False,
                },
                "delivery_id": "dlv-2024-05-01-0001",
                "line_number": 17,
            },
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "delivery_id": "dlv-2024-05-01-0001",
        }
        return json.dumps(doc, separators=(",", ":")).encode(), event_id, "CH-2019-000123"


def build_workload(n: int) -> Workload:
    """``n`` distinct envelopes (own event id and record id, so keys spread over partitions)."""
    template, event_id, record_id = _template()
    text = template.decode()
    keys, values, headers = [], [], []
    for i in range(n):
        eid = str(uuid.UUID(int=i + 1))
        rid = f"CH-2019-{i:06d}"
        values.append(text.replace(event_id, eid).replace(record_id, rid).encode())
        keys.append(f"cafcass-cymru/child/{rid}".encode())
        headers.append([("fjo-type", b"ingest.child-received.v1"), ("fjo-event-id", eid.encode())])
    return Workload(keys, values, headers)


# -- the backends under one small driver interface --------------------------------------------


class _Driver:
    """Produce/consume operations for one backend, each creating its own clients."""

    name: str

    def create_topic(self, topic: str, partitions: int) -> None: ...

    def produce(self, topic: str, w: Workload) -> None: ...

    def consumer(self, topic: str) -> Any: ...

    def poll(self, consumer: Any) -> list[int]:
        """Poll once; the record timestamps (ms) of what arrived."""
        raise NotImplementedError

    def commit(self, consumer: Any) -> None: ...

    def close_consumer(self, consumer: Any) -> None: ...

    def close(self) -> None: ...


class _RawKafka(_Driver):
    name = "raw-kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-raw-admin")
        self._last: dict[Any, Any] = {}

    def create_topic(self, topic: str, partitions: int) -> None:
        self.admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": -1}})
        self.admin.wait_for_topics([topic])

    def produce(self, topic: str, w: Workload) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, **PRODUCER_SETTINGS)
        send = producer.send
        for key, value, headers in zip(w.keys, w.values, w.headers, strict=True):
            send(topic, value=value, key=key, headers=headers)
        producer.flush()
        producer.close()

    def consumer(self, topic: str) -> Any:
        c = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
            **CONSUMER_SETTINGS,
        )
        c.subscribe([topic])
        return c

    def poll(self, consumer: Any) -> list[int]:
        batches = consumer.poll(timeout_ms=500, max_records=MAX_RECORDS)
        self._last = batches
        return [r.timestamp for records in batches.values() for r in records]

    def commit(self, consumer: Any) -> None:
        consumer.commit()

    def close_consumer(self, consumer: Any) -> None:
        consumer.close(autocommit=False)

    def close(self) -> None:
        self.admin.close()


class _OurBus(_Driver):
    def __init__(self, name: str, bus: Bus) -> None:
        self.name = name
        self.bus = bus
        self._last: list[Any] = []

    def create_topic(self, topic: str, partitions: int) -> None:
        self.bus.create_topics([TopicSpec(topic, partitions)])

    def produce(self, topic: str, w: Workload) -> None:
        producer = self.bus.producer()
        publish = producer.publish
        for key, value, headers in zip(w.keys, w.values, w.headers, strict=True):
            publish(topic, value, key=key, headers=headers)
        producer.flush()
        producer.close()

    def consumer(self, topic: str) -> Any:
        return self.bus.consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic])

    def poll(self, consumer: Any) -> list[int]:
        self._last = consumer.poll(max_records=MAX_RECORDS, timeout_s=0.5)
        return [m.timestamp_ms for m in self._last]

    def commit(self, consumer: Any) -> None:
        consumer.commit(self._last)

    def close_consumer(self, consumer: Any) -> None:
        consumer.close()

    def close(self) -> None:
        self.bus.close()


# -- measurements ---------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def _consume_all(
    driver: _Driver, consumer: Any, n: int, *, commit: bool, timeout_s: float
) -> tuple[float, float, list[int]]:
    """Read ``n`` records: (seconds until the first batch, msgs/s after it, latencies ms).

    The first poll includes the group join, so the rate is taken over the records after the
    first batch, from the moment it returned.
    """
    start = time.perf_counter()
    first_at: float | None = None
    first_batch = 0
    got = 0
    latencies: list[int] = []
    deadline = time.monotonic() + timeout_s
    while got < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{driver.name}: only {got} of {n} records arrived")
        stamps = driver.poll(consumer)
        if not stamps:
            continue
        now_ms = time.time() * 1000
        got += len(stamps)
        latencies.extend(int(now_ms - s) for s in stamps)
        if commit:
            driver.commit(consumer)
        if first_at is None:
            first_at, first_batch = time.perf_counter(), len(stamps)
    end = time.perf_counter()
    assert first_at is not None
    if got == first_batch:
        # Everything came in the first batch (a small run): the rate cannot leave the join
        # out, so it includes it.
        return first_at - start, _rate(got, end - start), latencies
    return first_at - start, _rate(got - first_batch, end - first_at), latencies


def _measure(driver: _Driver, w: Workload, partitions: int, timeout_s: float) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    out: dict[str, Any] = {"messages": w.size}

    topic = f"bench.bus-{driver.name}-{tag}"
    driver.create_topic(topic, partitions)
    t0, c0 = time.perf_counter(), time.process_time()
    driver.produce(topic, w)
    out["produce_msgs_per_s"] = _rate(w.size, time.perf_counter() - t0)
    # CPU time of this process (all its threads) per record: what our code adds, and far
    # less sensitive than wall-clock rates to other load on a shared machine.
    out["produce_cpu_us_per_msg"] = round((time.process_time() - c0) / w.size * 1e6, 2)

    for commit in (False, True):
        consumer = driver.consumer(topic)
        c0 = time.process_time()
        try:
            join_s, rate, _ = _consume_all(
                driver, consumer, w.size, commit=commit, timeout_s=timeout_s
            )
        finally:
            driver.close_consumer(consumer)
        key = "consume_with_commit_msgs_per_s" if commit else "consume_msgs_per_s"
        out[key] = rate
        if not commit:
            out["consume_first_record_s"] = round(join_s, 3)
            out["consume_cpu_us_per_msg"] = round((time.process_time() - c0) / w.size * 1e6, 2)

    # End to end: the consumer is in its group (and idle) before the first publish.
    topic = f"bench.bus-{driver.name}-e2e-{tag}"
    driver.create_topic(topic, partitions)
    consumer = driver.consumer(topic)
    ready, done = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def consume() -> None:
        try:
            deadline = time.monotonic() + 60
            while not consumer.assignment() and time.monotonic() < deadline:
                driver.poll(consumer)
            ready.set()
            _, _, latencies = _consume_all(
                driver, consumer, w.size, commit=True, timeout_s=timeout_s
            )
            result["latencies"] = latencies
            result["end"] = time.perf_counter()
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc
        finally:
            ready.set()
            done.set()

    thread = threading.Thread(target=consume, name=f"bench-{driver.name}-consumer")
    thread.start()
    ready.wait(90)
    t0 = time.perf_counter()
    driver.produce(topic, w)
    done.wait(timeout_s + 60)
    thread.join(10)
    driver.close_consumer(consumer)
    if "error" in result:
        raise result["error"]
    lat = sorted(result["latencies"])
    out["end_to_end_msgs_per_s"] = _rate(w.size, result["end"] - t0)
    out["end_to_end_latency_ms"] = {
        "p50": lat[len(lat) // 2],
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "max": lat[-1],
    }
    return out


@contextlib.contextmanager
def _profiled(enabled: bool, sink: dict[str, str], name: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        buf = io.StringIO()
        pstats.Stats(profile, stream=buf).sort_stats("tottime").print_stats(25)
        sink[name] = buf.getvalue()


def run_bus_benchmark(
    *,
    kafka_bootstrap: str | None = None,
    kafka_messages: int = 100_000,
    embedded_messages: int = 20_000,
    embedded_url: str | None = None,
    partitions: int = 6,
    backends: tuple[str, ...] = ("raw-kafka", "kafka", "embedded-sqlite"),
    timeout_s: float = 600.0,
    repeat: int = 1,
    profile: bool = False,
    write: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the bus benchmark and return its figures (also written to bench/results/).

    ``kafka_bootstrap`` defaults to FJO_KAFKA_BOOTSTRAP, FJO_TEST_KAFKA_BOOTSTRAP or
    var/kafka/bootstrap; without one the Kafka backends are skipped. ``embedded_url``
    defaults to a SQLite file in a temporary directory.
    """
    kafka_bootstrap = kafka_bootstrap or default_bootstrap()
    skipped: dict[str, str] = {}
    profiles: dict[str, str] = {}
    workloads: dict[int, Workload] = {}

    def workload(n: int) -> Workload:
        if n not in workloads:
            workloads[n] = build_workload(n)
        return workloads[n]

    runs: dict[str, list[dict[str, Any]]] = {}
    sizes = {"kafka": kafka_messages, "embedded": embedded_messages}
    with tempfile.TemporaryDirectory(prefix="fjo-bench-bus-") as tmp:
        for round_no in range(repeat):
            # Alternate the order so that drift in machine load does not favour one backend.
            order = backends if round_no % 2 == 0 else tuple(reversed(backends))
            for name in order:
                if name in ("raw-kafka", "kafka") and not kafka_bootstrap:
                    skipped[name] = "no Kafka bootstrap address"
                    continue
                driver, n = _driver(name, kafka_bootstrap, embedded_url, Path(tmp), round_no, sizes)
                w = workload(n)
                log(f"bench bus: {name} ({round_no + 1}/{repeat}): {n} x ~{w.mean_bytes:.0f} B")
                try:
                    with _profiled(profile and name != "raw-kafka", profiles, name):
                        run = _measure(driver, w, partitions, timeout_s)
                finally:
                    driver.close()
                runs.setdefault(name, []).append(run)
                log(f"bench bus: {name}: {json.dumps(run)}")
    results = {name: _best(rs) for name, rs in runs.items()}

    ratios: dict[str, dict[str, float]] = {}
    raw = results.get("raw-kafka")
    if raw:
        for name, r in results.items():
            if name == "raw-kafka":
                continue
            ratios[name] = {
                k: round(r[k] / raw[k], 3)
                for k in (
                    "produce_msgs_per_s",
                    "consume_msgs_per_s",
                    "consume_with_commit_msgs_per_s",
                    "end_to_end_msgs_per_s",
                )
            }
            # Throughput-equivalent from CPU cost: raw's CPU per record over ours.
            for k in ("produce_cpu_us_per_msg", "consume_cpu_us_per_msg"):
                ratios[name][k.replace("_us_per_msg", "_efficiency")] = round(raw[k] / r[k], 3)
    payload: dict[str, Any] = {
        "benchmark": "bus",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": {**environment(), "kafka_python": kafka.__version__},
        "parameters": {
            "kafka_messages": kafka_messages,
            "embedded_messages": embedded_messages,
            "partitions": partitions,
            "message_bytes": round(workload(min(workloads) if workloads else 1).mean_bytes),
            "producer": PRODUCER_SETTINGS,
            "max_records_per_poll": MAX_RECORDS,
            "repeat": repeat,
            "aggregate": "best of the rounds (highest rate, lowest latency and CPU cost)",
        },
        "results": results,
        "runs": runs,
        "ratio_to_raw_kafka": ratios,
        "skipped": skipped,
    }
    if profiles:
        payload["profiles"] = profiles
    if write:
        path = write_result("bus", payload)
        payload["written_to"] = str(path)
        log(f"bench bus: written to {path}")
    return payload


def _driver(
    name: str,
    bootstrap: str | None,
    embedded_url: str | None,
    tmp: Path,
    round_no: int,
    sizes: dict[str, int],
) -> tuple[_Driver, int]:
    if name == "raw-kafka":
        assert bootstrap
        return _RawKafka(bootstrap), sizes["kafka"]
    if name == "kafka":
        assert bootstrap
        bus = KafkaBus(
            bootstrap,
            client_id="bench",
            linger_ms=PRODUCER_SETTINGS["linger_ms"],
            batch_size=PRODUCER_SETTINGS["batch_size"],
            session_timeout_ms=CONSUMER_SETTINGS["session_timeout_ms"],
            heartbeat_interval_ms=CONSUMER_SETTINGS["heartbeat_interval_ms"],
        )
        return _OurBus("kafka", bus), sizes["kafka"]
    if name == "embedded-sqlite":
        url = embedded_url or f"sqlite+pysqlite:///{tmp / f'bus-{round_no}.db'}"
        return _OurBus(name, EmbeddedBus(url)), sizes["embedded"]
    raise ValueError(f"unknown backend {name!r}")


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best: dict[str, Any] = {"messages": runs[0]["messages"], "rounds": len(runs)}
    for key, value in runs[0].items():
        if key.endswith("_msgs_per_s"):
            best[key] = max(r[key] for r in runs)
            best[key.replace("_msgs_per_s", "_msgs_per_s_median")] = statistics.median(
                r[key] for r in runs
            )
        elif key == "consume_first_record_s" or key.endswith("_cpu_us_per_msg"):
            best[key] = min(r[key] for r in runs)
        elif key == "end_to_end_latency_ms":
            best[key] = {q: min(r[key][q] for r in runs) for q in value}
    return best


def default_bootstrap() -> str | None:
    """FJO_KAFKA_BOOTSTRAP, FJO_TEST_KAFKA_BOOTSTRAP or var/kafka/bootstrap."""
    return local_service(("FJO_KAFKA_BOOTSTRAP", "FJO_TEST_KAFKA_BOOTSTRAP"), "kafka/bootstrap")


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.bus``: run and print the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__)
    parser.add_argument("--kafka-bootstrap", default=None)
    parser.add_argument("--kafka-messages", type=int, default=100_000)
    parser.add_argument("--embedded-messages", type=int, default=20_000)
    parser.add_argument("--embedded-url", default=None)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--backends",
        default="raw-kafka,kafka,embedded-sqlite",
        help="comma-separated: raw-kafka, kafka, embedded-sqlite",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best is reported")
    parser.add_argument("--profile", action="store_true", help="cProfile our backends")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    payload = run_bus_benchmark(
        kafka_bootstrap=args.kafka_bootstrap,
        kafka_messages=args.kafka_messages,
        embedded_messages=args.embedded_messages,
        embedded_url=args.embedded_url,
        partitions=args.partitions,
        backends=tuple(b.strip() for b in args.backends.split(",") if b.strip()),
        repeat=args.repeat,
        profile=args.profile,
        write=not args.no_write,
    )
    for name, text in payload.get("profiles", {}).items():
        print(f"\n==== cProfile: {name} ====\n{text}")
    print(
        json.dumps({k: payload[k] for k in ("results", "ratio_to_raw_kafka", "skipped")}, indent=2)
    )


if __name__ == "__main__":
    main()
