"""The platform as ``fjo up`` runs it (every role its own process, Kafka + PostgreSQL): what
the end-to-end story test needs to start it, read it and stop it.

The stack gets consumer groups of its own, committed at the end of every topic before its
workers start (they see nothing older), databases of its own (dropped afterwards) and its own
dev keys; everything read back is filtered by this run's record tokens, delivery ids or
consumer groups, and topics are read only from the offsets they had when the stack started.

That is enough for reading, not for running on a broker where another pseudonymise worker
(another test's) consumes ``ingest.records.v1`` at the same time: pseudonymise derives its
output event ids from the input's, so both workers publish messages with the same event ids
for this run's records, under different keys, and link and access apply whichever arrives
first and skip the other as a duplicate (their exactly-once marker is the event id). The
story test therefore runs this stack on a broker of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.pool import NullPool

from contracts.topics import TOPICS
from fjo.deploy_cli import (
    REPO_ROOT,
    StackState,
    _fjo_command,
    _is_ours,
    _service_env,
    down_stack,
    up_stack,
)
from services.runtime.delivery import DLQ_CONSUMER_GROUP
from tests._services import drop_database

__all__ = ["KafkaStoryStack", "header", "wait_until"]

WORKER_SERVICES = ("pseudonymise", "link", "access")


def header(record: ConsumerRecord, name: str) -> str:
    """A Kafka record's header as text ("" when absent)."""
    for key, value in record.headers or ():
        if key == name:
            return bytes(value or b"").decode("utf-8", errors="replace")
    return ""


def wait_until(
    what: str,
    done: Callable[[], bool],
    progress: Callable[[], Any],
    *,
    timeout_s: float,
    stall_s: float = 90.0,
    problems: Callable[[], list[str]] = list,
) -> None:
    """Poll ``done`` (a hang guard, not a timing assertion): fail with ``progress()`` when it
    never holds, when progress stood still for ``stall_s``, or as soon as ``problems()`` names
    one (a process that exited)."""
    deadline = time.monotonic() + timeout_s
    last, since = progress(), time.monotonic()
    while not done():
        now = time.monotonic()
        if found := problems():
            raise AssertionError(f"{what}: {found}; progress: {progress()}")
        current = progress()
        if current != last:
            last, since = current, now
        elif now - since > stall_s:
            raise AssertionError(f"{what}: no progress for {stall_s:.0f} s; stuck at {current}")
        if now > deadline:
            raise AssertionError(f"{what}: not done in {timeout_s:.0f} s; progress: {current}")
        time.sleep(0.5)


@dataclass
class KafkaStoryStack:
    """Every role of the platform as its own ``fjo serve`` process (``up_stack``) on Kafka and
    PostgreSQL, with consumer groups, databases and keys of its own."""

    state_dir: Path
    bootstrap: str
    postgres_url: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    state: StackState | None = None
    start_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    _engines: dict[str, sa.Engine] = field(default_factory=dict)
    _pids: list[int] = field(default_factory=list)

    @property
    def db_prefix(self) -> str:
        return f"fjo_e2e_{self.tag}"

    @property
    def groups(self) -> dict[str, str]:
        """Each worker's consumer group: this run's own."""
        return {s: f"fjo-e2e-{self.tag}-{s}" for s in WORKER_SERVICES}

    @property
    def key_dir(self) -> Path:
        """pseudonymise's dev master key (and link's ALF key) live here."""
        return self.state_dir / "keys"

    @property
    def issuer_key(self) -> Path:
        return self.state_dir / "dev-issuer.pem"

    def extra_env(self) -> dict[str, str]:
        env = {f"FJO_{s.upper()}_WORKER_GROUP": g for s, g in self.groups.items()}
        for service in ("pseudonymise", "link"):
            env[f"FJO_{service.upper()}_DEV_KEY_DIR"] = str(self.key_dir)
        return env

    # -- start and stop ---------------------------------------------------------------------

    def up(self) -> KafkaStoryStack:
        from services.runtime.bus.kafka import KafkaBus
        from services.runtime.topics import topic_specs

        bus = KafkaBus(self.bootstrap, client_id=f"fjo-e2e-{self.tag}")
        try:
            bus.create_topics(topic_specs())
        finally:
            bus.close()
        self.start_offsets = self.end_offsets()
        for service, group in self.groups.items():
            topics = {t.name for t in TOPICS if service in t.consumers}
            self._commit(group, {k: o for k, o in self.start_offsets.items() if k[0] in topics})
        # Recorded before anything can fail: ``down`` stops and drops whatever was started.
        self.state = up_stack(
            self.state_dir,
            kafka_bootstrap=self.bootstrap,
            postgres_url=self.postgres_url,
            db_prefix=self.db_prefix,
            ready_timeout_s=180.0,
            echo=self.log.append,
            extra_env=self.extra_env(),
        )
        self._pids = [sp.pid for sp in self.state.processes]
        for service, url in self.state.databases.items():
            self._engines[service] = sa.create_engine(url, poolclass=NullPool)
        return self

    def _commit(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """Start ``group`` at these offsets (the topics' ends): it skips the backlog."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        try:
            tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
            consumer.assign(list(tps))
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in tps.items()})
        finally:
            consumer.close(autocommit=False)

    def down(self) -> list[str]:
        """Stop every process, drop the databases; the pids that still run (none, normally)."""
        try:
            down_stack(self.state_dir, stop_services=False, echo=self.log.append)
        finally:
            for engine in self._engines.values():
                engine.dispose()
            for service in ("ingest", *WORKER_SERVICES):
                url = sa.engine.make_url(self.postgres_url).set(
                    database=f"{self.db_prefix}_{service}"
                )
                drop_database(self.postgres_url, url.render_as_string(hide_password=False))
        return [f"pid {pid}" for pid in self._pids if _running(pid)]

    def exited(self) -> list[str]:
        """Processes of the stack that are no longer running."""
        if self.state is None:
            return []
        return [
            f"{sp.name} exited; see {sp.log}" for sp in self.state.processes if not _is_ours(sp)
        ]

    def lag(self) -> dict[str, int]:
        """Records each of this stack's groups has not committed yet, per topic."""
        end = self.end_offsets()
        out: dict[str, int] = {}
        for service, group in self.groups.items():
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
            )
            try:
                for t in TOPICS:
                    if service in t.consumers:
                        out[f"{group} <- {t.name}"] = sum(
                            hi - (consumer.committed(TopicPartition(name, p)) or 0)
                            for (name, p), hi in end.items()
                            if name == t.name
                        )
            finally:
                consumer.close(autocommit=False)
        return out

    def log_tails(self, lines: int = 4, width: int = 400) -> str:
        """The last lines of every process's log, for a failure message (the state dir is
        a tmp dir that later pytest runs may remove)."""
        out = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(line[:width] for line in tail))
        return "\n".join(out)

    def url(self, name: str) -> str:
        """Base URL of an API process, e.g. ``"ingest-api"``."""
        assert self.state is not None
        port = next(sp.port for sp in self.state.processes if sp.name == name)
        return f"http://127.0.0.1:{port}"

    # -- databases --------------------------------------------------------------------------

    def rows(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on ``service``'s database (``fjo.demo.report.Stores``)."""
        with self._engines[service].connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    def tokens(self, service: str, table: str) -> set[str]:
        return {r[0] for r in self.rows(service, f"SELECT record_token FROM {table}")}

    def dump(self, service: str) -> bytes:
        """Every row of every table of ``service``'s database, as JSON lines."""
        meta = sa.MetaData()
        engine = self._engines[service]
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(
                json.dumps([list(row) for row in conn.execute(sa.select(table))], default=str)
                for table in meta.sorted_tables
            ).encode()

    def audit_verify(self) -> dict[str, Any]:
        """``fjo audit verify --json`` as an operator runs it, with access's own settings."""
        assert self.state is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")} | _service_env(
            "access",
            database_url=self.state.databases["access"],
            bootstrap=self.bootstrap,
            state_dir=self.state_dir,
        )
        done = subprocess.run(
            [*_fjo_command(), "audit", "verify", "--json"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(
                f"fjo audit verify printed nothing ({done.returncode}): {done.stderr}"
            )
        return {"exit_code": done.returncode, **json.loads(lines[-1])}

    # -- topics -----------------------------------------------------------------------------

    def end_offsets(self) -> dict[tuple[str, int], int]:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        try:
            tps = [
                TopicPartition(t.name, p)
                for t in TOPICS
                for p in sorted(consumer.partitions_for_topic(t.name) or ())
            ]
            return {(tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(tps).items()}
        finally:
            consumer.close(autocommit=False)

    def read(self, topic: str, *, timeout_s: float = 60.0) -> list[ConsumerRecord]:
        """``topic``'s records from where it stood when the stack started to where it is now."""
        return list(self._read(topic, timeout_s))

    def _read(self, topic: str, timeout_s: float) -> Iterator[ConsumerRecord]:
        end = {k: o for k, o in self.end_offsets().items() if k[0] == topic}
        ranges = {
            TopicPartition(t, p): (self.start_offsets.get((t, p), 0), hi)
            for (t, p), hi in end.items()
            if hi > self.start_offsets.get((t, p), 0)
        }
        if not ranges:
            return
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        try:
            consumer.assign(list(ranges))
            for tp, (lo, _hi) in ranges.items():
                consumer.seek(tp, lo)
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < hi for tp, (_lo, hi) in ranges.items()):
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not read {topic} to its end in {timeout_s:.0f} s")
                for tp, records in consumer.poll(timeout_ms=500).items():
                    yield from (r for r in records if r.offset < ranges[tp][1])
        finally:
            consumer.close(autocommit=False)

    def dead_letters(self) -> list[ConsumerRecord]:
        """Dead letters this stack's workers wrote (their consumer group is in the header)."""
        ours = set(self.groups.values())
        return [
            record
            for topic in sorted({d for t in TOPICS for d in t.dead_letter_topics})
            for record in self.read(topic)
            if header(record, DLQ_CONSUMER_GROUP) in ours
        ]


def _running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}
