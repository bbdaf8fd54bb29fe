"""Running the pipeline as processes for the reliability tests: a broker, three workers, probes.

* ``Broker``: a dedicated single-node Kafka from ``scripts/kafka.sh`` in its own state dir, so
  restarting it (``scripts/kafka.sh restart``) disturbs no other test.
* ``Pipeline``: the pseudonymise, link and access workers as ``fjo serve <service> worker``
  processes, started, SIGKILLed and restarted with ``fjo.stack`` (``up_stack``,
  ``kill_role``, ``restart_role``), each on its own fresh PostgreSQL database; it reads their
  databases to see progress and to snapshot the outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from fjo.stack.kafka import up_stack
from fjo.stack.processes import down_stack, kill_role, restart_role
from services.runtime.delivery import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_ERROR_TYPE,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    EVENT_ID_HEADER,
)
from tests._services import drop_database

__all__ = ["Broker", "DeadLetter", "Pipeline", "TopicSizes", "read_topic", "wait_for"]

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "scripts" / "kafka.sh"
WORKERS = (("pseudonymise", "worker"), ("link", "worker"), ("access", "worker"))
DEAD_LETTER_TOPICS = (
    "pseudonymise.dead-letters.v1",
    "link.dead-letters.v1",
    "access.dead-letters.v1",
)
MARKER_TABLES = {
    "pseudonymise": "processed_messages",
    "link": "processed_messages",
    "access": "access_processed_messages",
}


def wait_for(
    what: str,
    check: Callable[[], bool],
    *,
    timeout_s: float,
    progress: Callable[[], Any],
    stall_s: float = 60.0,
    interval_s: float = 0.05,
) -> None:
    """Poll ``check`` until it holds. A hang guard, not a timing assertion: fail with
    ``progress()`` when it never holds, or sooner when progress stood still for ``stall_s``
    (far longer than a rebalance after a kill or a broker restart takes)."""
    deadline = time.monotonic() + timeout_s
    last, since = progress(), time.monotonic()
    looked = since
    while not check():
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(f"{what}: not reached in {timeout_s}s; progress: {progress()}")
        if now - looked > 1.0:
            looked, current = now, progress()
            if current != last:
                last, since = current, now
            elif now - since > stall_s:
                raise AssertionError(f"{what}: no progress for {stall_s}s; stuck at {current}")
        time.sleep(interval_s)


# ------------------------------------------------------------------------------------ broker


@dataclass
class Broker:
    """A broker this test module owns (``scripts/kafka.sh`` with its own state dir)."""

    state_dir: Path
    bootstrap: str = ""

    def _run(self, command: str) -> str:
        env = dict(os.environ, FJO_KAFKA_STATE_DIR=str(self.state_dir))
        done = subprocess.run(
            [str(KAFKA_SH), command], env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed ({done.returncode}): {done.stderr}")
        return done.stdout.strip()

    def start(self) -> Broker:
        self.bootstrap = self._run("start")
        return self

    def restart(self) -> None:
        """Stop and start it again on its data; the address stays the same."""
        bootstrap = self._run("restart")
        if bootstrap != self.bootstrap:
            raise AssertionError(f"restart moved the broker: {self.bootstrap} -> {bootstrap}")

    def stop(self) -> None:
        self._run("stop")

    def cluster_id(self) -> str:
        meta = (self.state_dir / "data" / "meta.properties").read_text()
        return next(
            line.split("=", 1)[1] for line in meta.splitlines() if line.startswith("cluster.id=")
        )


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 60.0) -> list[Any]:
    """Every record on ``topic`` from the beginning to its current end (no consumer group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        client_id="reliability",
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout_s}s")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


class TopicSizes:
    """How many records each topic holds (the sum of its partitions' end offsets)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        self._partitions: dict[str, list[TopicPartition]] = {}
        self._closed = False

    def __call__(self, topic: str) -> int:
        tps = self._partitions.get(topic)
        if tps is None:
            partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                raise LookupError(f"no partitions known for {topic}")
            tps = self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(partitions)]
        return sum(self._consumer.end_offsets(tps).values())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()


def read_at(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    """The value of one record."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500, max_records=1).get(tp, []):
                return bytes(record.value)
        raise AssertionError(f"no record at {topic}/{partition}@{offset}")
    finally:
        consumer.close()


@dataclass(frozen=True, order=True)
class DeadLetter:
    """A dead letter as the runs compare it (positions on a topic several producers write to
    depend on timing, so they are checked separately, not compared)."""

    dlq: str
    original_topic: str
    error_type: str
    event_id: str
    value_sha256: str


def _header(record: Any, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value or b"").decode()
    return ""


def dead_letters(bootstrap: str) -> tuple[list[DeadLetter], list[dict[str, Any]]]:
    """The dead-letter topics' contents, and for each letter its original position and reason."""
    letters: list[DeadLetter] = []
    details: list[dict[str, Any]] = []
    for topic in DEAD_LETTER_TOPICS:
        for record in read_topic(bootstrap, topic):
            letter = DeadLetter(
                topic,
                _header(record, DLQ_ORIGINAL_TOPIC),
                _header(record, DLQ_ERROR_TYPE),
                _header(record, EVENT_ID_HEADER),
                hashlib.sha256(bytes(record.value)).hexdigest(),
            )
            letters.append(letter)
            details.append(
                {
                    "letter": letter,
                    "value": bytes(record.value),
                    "partition": int(_header(record, DLQ_ORIGINAL_PARTITION) or -1),
                    "offset": int(_header(record, DLQ_ORIGINAL_OFFSET) or -1),
                    "error": _header(record, DLQ_ERROR),
                    "attempts": _header(record, DLQ_ATTEMPTS),
                }
            )
    return sorted(letters), details


# ---------------------------------------------------------------------------------- pipeline


@dataclass
class Pipeline:
    """The three workers of one run, their databases and what happened to them."""

    state_dir: Path
    broker: Broker
    postgres_url: str
    extra_env: dict[str, str]
    prefix: str = field(default_factory=lambda: f"fjo_rel_{uuid.uuid4().hex[:10]}")
    log: list[str] = field(default_factory=list)
    _engines: dict[str, sa.Engine] = field(default_factory=dict)

    def up(self) -> Pipeline:
        state = up_stack(
            self.state_dir,
            kafka_bootstrap=self.broker.bootstrap,
            postgres_url=self.postgres_url,
            db_prefix=self.prefix,
            roles=WORKERS,
            extra_env=self.extra_env,
            echo=self.log.append,
        )
        for service, url in state.databases.items():
            self._engines[service] = sa.create_engine(url, poolclass=NullPool)
        return self

    def kill(self, service: str) -> None:
        """SIGKILL the worker's process (no shutdown, no commit, no leaving the group)."""
        pid = kill_role(self.state_dir, f"{service}-worker")
        self.log.append(f"killed {service}-worker (pid {pid})")

    def restart(self, service: str, *, timeout_s: float = 120.0) -> None:
        """Start the worker again and wait until its loop runs: a worker's /readyz answers
        once its probe server is up, before it has connected to the bus, and a broker
        restart in that moment would leave it unable to start (seen on a loaded machine)."""
        log = self.state_dir / "logs" / f"{service}-worker.log"
        seen = log.stat().st_size if log.exists() else 0
        restart_role(
            self.state_dir, f"{service}-worker", extra_env=self.extra_env, echo=self.log.append
        )
        deadline = time.monotonic() + timeout_s
        while b'"msg":"worker started"' not in log.read_bytes()[seen:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{service}-worker did not start its loop: see {log}")
            time.sleep(0.1)

    def down(self) -> None:
        try:
            down_stack(self.state_dir, stop_services=False, echo=self.log.append)
        finally:
            for engine in self._engines.values():
                engine.dispose()
            for service in ("ingest", "pseudonymise", "link", "access"):
                url = make_url(self.postgres_url).set(database=f"{self.prefix}_{service}")
                drop_database(self.postgres_url, url.render_as_string(hide_password=False))

    # -- reading the databases ------------------------------------------------------------

    def rows(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        with self._engines[service].connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    def count(self, service: str, sql: str) -> int:
        return int(self.rows(service, sql)[0][0])

    def markers(self, service: str, outcome: str | None = None) -> int:
        where = f" WHERE outcome = '{outcome}'" if outcome else ""
        return self.count(service, f"SELECT count(*) FROM {MARKER_TABLES[service]}{where}")

    def progress(self) -> dict[str, Any]:
        return {
            "markers": {s: self.markers(s) for s in MARKER_TABLES},
            "dead_lettered": {s: self.markers(s, "dead_lettered") for s in MARKER_TABLES},
            "spine": self.count("link", "SELECT count(*) FROM link_spine_records"),
            "link_results": self.count("link", "SELECT count(*) FROM link_results"),
            "store": self.count("access", "SELECT count(*) FROM access_research_records"),
            "decisions": self.count("access", "SELECT count(*) FROM access_link_decisions"),
        }

    def in_transaction(self, service: str) -> bool:
        """Whether a worker's session on ``service``'s database is inside a transaction (a
        batch under way: its effects written, not yet committed)."""
        return bool(
            self.count(
                service,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
            )
        )

    def link_results(self) -> set[tuple[str, int]]:
        return set(self.rows("link", "SELECT record_token, sequence FROM link_results"))

    def decisions(self) -> set[tuple[str, int]]:
        return set(self.rows("access", "SELECT record_token, sequence FROM access_link_decisions"))

    def snapshot(self) -> dict[str, Any]:
        """What a clean and a disturbed run must agree on."""
        store = self.rows(
            "access",
            """
            SELECT r.record_token, r.record_type, r.source, r.record_version,
                   md5(CAST(r.content AS text)), d.alf, d.status_code, d.sequence,
                   d.match_probability, d.model_version
            FROM access_research_records r
            LEFT JOIN access_link_decisions d ON d.record_token = r.record_token
            ORDER BY r.record_token
            """,
        )
        history = self.rows(
            "access",
            "SELECT record_token, sequence, alf, status_code FROM access_link_results "
            "ORDER BY record_token, sequence",
        )
        link = self.rows(
            "link",
            "SELECT record_token, sequence, alf, status FROM link_results ORDER BY record_token",
        )
        return {
            "store": store,
            "history": history,
            "link_results": link,
            "spine": self.count("link", "SELECT count(*) FROM link_spine_records"),
            "incoming_keys": self.count("link", "SELECT count(*) FROM link_incoming_keys"),
            "link_audit": self.count("link", "SELECT count(*) FROM link_audit"),
            "markers": {s: self.markers(s) for s in MARKER_TABLES},
            "dead_lettered": {s: self.markers(s, "dead_lettered") for s in MARKER_TABLES},
        }


# Workers take up to bus.max_batch records per poll; the workload's chunks are a few hundred
# records, so with the default (500) a chunk is one batch and no kill can land mid-stream.
SMALL_BATCHES = {
    f"FJO_{service.upper()}_BUS__MAX_BATCH": "100" for service in ("pseudonymise", "link", "access")
}


def key_env(tmp: Path) -> dict[str, str]:
    """One fixed pseudonymisation master key and ALF key (so two runs' tokens compare), and
    small worker batches (``SMALL_BATCHES``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    master = tmp / "master-v1.key"
    master.write_bytes(os.urandom(32))
    alf = tmp / "alf.key"
    alf.write_text(os.urandom(32).hex())
    kek = tmp / "vault-kek-k1.key"
    kek.write_bytes(os.urandom(32))
    return {
        "FJO_PSEUDONYMISE_MASTER_KEY_FILES": json.dumps({"1": str(master)}),
        "FJO_PSEUDONYMISE_VAULT_KEK_FILES": json.dumps({"k1": str(kek)}),
        "FJO_PSEUDONYMISE_DEV_KEY_DIR": str(tmp / "dev-keys"),
        "FJO_LINK_ALF_KEY_FILE": str(alf),
        "FJO_LINK_DEV_KEY_DIR": str(tmp / "dev-keys"),
        **SMALL_BATCHES,
    }
