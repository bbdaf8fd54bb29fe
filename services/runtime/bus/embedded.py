"""The embedded backend: a durable, partitioned log with consumer groups in the local SQL database.

It is the single-machine default (SQLite file) and also runs on PostgreSQL. Everything lives
in the database (records, high-water marks, group offsets, group members), so producers and
consumers in several processes share one log and a restart loses nothing.

How it mirrors Kafka:
- Partitions: a keyed record goes to ``murmur2(key) % partitions``, Kafka's default, so a key
  lands on the same partition number on either backend. Records without a key are spread
  round-robin per producer and topic.
- Offsets are dense per partition and assigned inside the insert transaction: the producer
  bumps the partition's ``next_offset`` row (``UPDATE .. RETURNING``), which row-locks it on
  PostgreSQL and runs under ``BEGIN IMMEDIATE`` on SQLite. Concurrent producers therefore
  commit one partition's offsets in order, so readers never see a gap that fills in later.
- Groups: each consumer is a row in ``bus_group_members`` kept alive by a heartbeat thread; a
  member whose heartbeat is older than its session timeout is dead. Partitions are
  range-assigned over the sorted live members of each topic, recomputed on every poll; a
  commit is fenced by the assignment current at commit time.
- Producers buffer and write a batch per flush; a background thread flushes after
  ``linger_ms`` and publish flushes when ``batch_size`` records are waiting.

A service's own database may be the same PostgreSQL database, but on SQLite keep the bus in
its own file: SQLite has one writer per file, and a worker flushes the bus while its own
transaction is open.

Identifiable topics (the registry's ``identifiable=True``: records in clear) live in a log of
their own, which only ingest and pseudonymise open (``services.runtime.bus.separated`` puts
the two logs behind one bus): an ``EmbeddedBus`` made with ``identifiable=True`` holds those
topics and nothing else, any other holds none of them, and each refuses to create, produce or
consume a topic of the other kind. Topics with ``cleanup.policy=delete`` lose records older
than their ``retention.ms``, as on Kafka (checked when a producer writes, at most once a
minute, and by ``enforce_retention``).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from contracts.topics import IDENTIFIABLE_TOPICS
from services.runtime.bus.api import BusError, Headers, Message, PartitionLag, TopicSpec
from services.runtime.bus.records import normalise_headers, normalise_key, partition_for_key
from services.runtime.bus.tracing import inject_trace_headers
from services.runtime.db import is_sqlite, make_engine

__all__ = [
    "EmbeddedBus",
    "EmbeddedConsumer",
    "EmbeddedProducer",
    "IdentifiableTopicError",
    "bus_tables",
    "decode_headers",
]

log = logging.getLogger(__name__)

_SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class BusTables:
    """The embedded bus's tables (prefix ``bus_``), bound to one ``MetaData``."""

    metadata: MetaData
    topics: Table
    partitions: Table
    records: Table
    group_offsets: Table
    group_members: Table


def bus_tables(schema: str | None = None) -> BusTables:
    """Define the bus tables, in ``schema`` when given (PostgreSQL)."""
    md = MetaData(schema=schema)
    topics = Table(
        "bus_topics",
        md,
        Column("name", String(249), primary_key=True),
        Column("partitions", Integer, nullable=False),
        Column("configs", Text, nullable=False, default="{}"),
        Column("created_ms", BigInteger, nullable=False),
    )
    partitions = Table(
        "bus_partitions",
        md,
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True),
        # The high-water mark: the offset the next record of this partition will get.
        Column("next_offset", BigInteger, nullable=False),
    )
    records = Table(
        "bus_records",
        md,
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("offset", BigInteger, primary_key=True, autoincrement=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", LargeBinary, nullable=True),
        Column("timestamp_ms", BigInteger, nullable=False),
        # Clustered on (topic, partition, offset): a poll is one range scan.
        sqlite_with_rowid=False,
    )
    group_offsets = Table(
        "bus_group_offsets",
        md,
        Column("group_id", String(255), primary_key=True),
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("committed_offset", BigInteger, nullable=False),
        Column("updated_ms", BigInteger, nullable=False),
    )
    group_members = Table(
        "bus_group_members",
        md,
        Column("group_id", String(255), primary_key=True),
        Column("member_id", String(64), primary_key=True),
        Column("topics", Text, nullable=False),
        Column("heartbeat_ms", BigInteger, nullable=False),
        Column("session_timeout_ms", Integer, nullable=False),
        Column("joined_ms", BigInteger, nullable=False),
    )
    return BusTables(md, topics, partitions, records, group_offsets, group_members)


# Headers are stored as one blob: (u16 name length, name, u32 value length, value)*.
# Cheaper than JSON+base64 for binary values, and exact.
_H_NAME = struct.Struct(">H")
_H_VALUE = struct.Struct(">I")


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    if not headers:
        return None
    parts: list[bytes] = []
    for name, value in headers:
        raw = name.encode("utf-8")
        parts += (_H_NAME.pack(len(raw)), raw, _H_VALUE.pack(len(value)), value)
    return b"".join(parts)


def decode_headers(blob: bytes | None) -> Headers:
    """The headers of a ``bus_records.headers`` blob (for tools that read the log directly)."""
    if not blob:
        return ()
    blob = bytes(blob)
    out: list[tuple[str, bytes]] = []
    i, n = 0, len(blob)
    while i < n:
        (ln,) = _H_NAME.unpack_from(blob, i)
        i += 2
        name = blob[i : i + ln].decode("utf-8")
        i += ln
        (lv,) = _H_VALUE.unpack_from(blob, i)
        i += 4
        out.append((name, blob[i : i + lv]))
        i += lv
    return tuple(out)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sqlite_read_engine(url: str) -> Engine:
    """A SQLite engine for reads that never takes the write lock.

    ``db.make_engine`` starts every transaction with ``BEGIN IMMEDIATE`` (right for
    read-modify-write); polls only read, and in WAL mode a plain read does not block
    writers, so idle consumers do not contend with producers.
    """
    engine = create_engine(
        url,
        connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: each SELECT is its own snapshot
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    return engine


class IdentifiableTopicError(BusError):
    """A topic on the wrong log: identifiable on a shared one, or shared on the identifiable."""


@dataclass(frozen=True)
class _TopicMeta:
    partitions: int
    max_message_bytes: int | None


class EmbeddedBus:
    """The single-machine backend: a durable log in SQLite (default) or PostgreSQL."""

    name = "embedded"

    def __init__(
        self,
        database_url: str,
        *,
        schema: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int | None = None,
        linger_ms: int = 5,
        batch_size: int = 2_000,
        poll_interval_ms: int = 50,
        create_tables: bool = True,
        identifiable: bool = False,
        identifiable_topics: Collection[str] | None = None,
        retention_check_s: float = 60.0,
    ) -> None:
        self.url = database_url
        self.identifiable = identifiable
        """Whether this log holds the identifiable topics (and only those)."""
        self.identifiable_topics = frozenset(
            (t.name for t in IDENTIFIABLE_TOPICS)
            if identifiable_topics is None
            else identifiable_topics
        )
        self.retention_check_s = retention_check_s
        self._retention_checked = float("-inf")
        self.tables = bus_tables(schema)
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms or max(100, session_timeout_ms // 3)
        self.linger_ms = linger_ms
        self.batch_size = batch_size
        self.poll_interval_ms = poll_interval_ms
        self.engine = make_engine(database_url)
        self.read_engine = (
            _sqlite_read_engine(database_url) if is_sqlite(database_url) else self.engine
        )
        self._sqlite = is_sqlite(database_url)
        self.sqlite_records_insert: str | None = None
        if self._sqlite:
            columns = ("topic", "partition", "offset", "key", "value", "headers", "timestamp_ms")
            stmt = insert(self.tables.records).values({c: None for c in columns})
            compiled = stmt.compile(dialect=self.engine.dialect)
            if not compiled.positional or compiled.positiontup != list(columns):
                raise RuntimeError("unexpected SQLite insert shape for bus_records")
            self.sqlite_records_insert = str(compiled)
        self._topic_cache: dict[str, _TopicMeta] = {}
        self._topic_lock = threading.Lock()
        if create_tables:
            self._create_tables()

    def _create_tables(self) -> None:
        try:
            self.tables.metadata.create_all(self.engine)
        except DBAPIError:
            # Another process created them at the same moment (PostgreSQL catalog race).
            self.tables.metadata.create_all(self.engine)

    def admit(self, topic: str) -> None:
        """Raise ``IdentifiableTopicError`` unless ``topic`` belongs on this log."""
        if (topic in self.identifiable_topics) == self.identifiable:
            return
        if self.identifiable:
            raise IdentifiableTopicError(
                f"topic {topic!r} is not identifiable: it does not belong on the identifiable log"
            )
        raise IdentifiableTopicError(
            f"topic {topic!r} is identifiable: this bus is not configured for identifiable "
            "topics (they live in a log of their own, bus.embedded_identifiable_url, which only "
            "ingest and pseudonymise open)"
        )

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete records older than their topic's ``retention.ms`` (``cleanup.policy``
        ``delete``); how many went. Compacted topics keep everything (no compaction here)."""
        t = self.tables
        now = _now_ms() if now_ms is None else now_ms
        deleted = 0
        try:
            with self.engine.begin() as conn:
                for name, configs in conn.execute(select(t.topics.c.name, t.topics.c.configs)):
                    config = json.loads(configs or "{}")
                    retention = config.get("retention.ms")
                    if config.get("cleanup.policy", "delete") != "delete" or retention is None:
                        continue
                    if int(retention) < 0:  # Kafka's -1: keep forever
                        continue
                    result = conn.execute(
                        delete(t.records).where(
                            t.records.c.topic == name,
                            t.records.c.timestamp_ms < now - int(retention),
                        )
                    )
                    deleted += result.rowcount or 0
        except SQLAlchemyError as exc:
            raise BusError(f"retention failed: {type(exc).__name__}") from exc
        self._retention_checked = time.monotonic()
        return deleted

    def retention_due(self) -> bool:
        """Whether ``enforce_retention`` last ran more than ``retention_check_s`` ago."""
        return time.monotonic() - self._retention_checked >= self.retention_check_s

    def upsert(self) -> Any:
        """The dialect's ``INSERT`` that supports ``ON CONFLICT`` (SQLite or PostgreSQL)."""
        return sqlite.insert if self._sqlite else postgresql.insert

    # -- topics -------------------------------------------------------------------------
    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics with their partitions' high-water rows; keep existing ones."""
        if not specs:
            return
        t = self.tables
        ins = self.upsert()
        now = _now_ms()
        try:
            with self.engine.begin() as conn:
                for spec in specs:
                    self.admit(spec.name)
                    if spec.partitions < 1:
                        raise BusError(f"topic {spec.name!r} needs at least one partition")
                    conn.execute(
                        ins(t.topics)
                        .values(
                            name=spec.name,
                            partitions=spec.partitions,
                            configs=json.dumps(dict(spec.configs), sort_keys=True),
                            created_ms=now,
                        )
                        .on_conflict_do_nothing(index_elements=["name"])
                    )
                    existing = conn.execute(
                        select(t.topics.c.partitions).where(t.topics.c.name == spec.name)
                    ).scalar_one()
                    conn.execute(
                        ins(t.partitions).on_conflict_do_nothing(
                            index_elements=["topic", "partition"]
                        ),
                        [
                            {"topic": spec.name, "partition": p, "next_offset": 0}
                            for p in range(existing)
                        ],
                    )
        except SQLAlchemyError as exc:
            raise BusError(f"create_topics failed: {type(exc).__name__}") from exc
        self.enforce_retention()

    def topic_meta(self, topic: str) -> _TopicMeta | None:
        """Partition count and size limit of ``topic`` (cached; ``None`` if it does not exist)."""
        meta = self._topic_cache.get(topic)
        if meta is not None:
            return meta
        t = self.tables
        with self.read_engine.connect() as conn:
            row = conn.execute(
                select(t.topics.c.partitions, t.topics.c.configs).where(t.topics.c.name == topic)
            ).first()
        if row is None:
            return None
        configs = json.loads(row.configs or "{}")
        limit = configs.get("max.message.bytes")
        meta = _TopicMeta(int(row.partitions), int(limit) if limit is not None else None)
        with self._topic_lock:
            self._topic_cache[topic] = meta
        return meta

    def consumer_lag(self, group_id: str, topics: Sequence[str]) -> list[PartitionLag]:
        """The group's committed offsets against each partition's high-water mark; the start
        is the oldest record retention left (the high-water mark when none is left)."""
        t = self.tables
        wanted = sorted(set(topics))
        if not wanted:
            return []
        p, r = t.partitions.c, t.records.c
        try:
            with self.read_engine.connect() as conn:
                ends = conn.execute(
                    select(p.topic, p.partition, p.next_offset)
                    .where(p.topic.in_(wanted))
                    .order_by(p.topic, p.partition)
                ).all()
                committed = {
                    (row.topic, row.partition): int(row.committed_offset)
                    for row in conn.execute(
                        select(
                            t.group_offsets.c.topic,
                            t.group_offsets.c.partition,
                            t.group_offsets.c.committed_offset,
                        ).where(
                            t.group_offsets.c.group_id == group_id,
                            t.group_offsets.c.topic.in_(wanted),
                        )
                    )
                }
                out = []
                for topic, partition, end in ends:
                    # One index lookup per partition (the records' key leads with it).
                    first = conn.execute(
                        select(func.min(r.offset)).where(r.topic == topic, r.partition == partition)
                    ).scalar()
                    out.append(
                        PartitionLag(
                            topic,
                            int(partition),
                            int(first) if first is not None else int(end),
                            int(end),
                            committed.get((topic, partition)),
                        )
                    )
        except SQLAlchemyError as exc:
            raise BusError(f"consumer_lag failed: {type(exc).__name__}") from exc
        return out

    # -- factories ------------------------------------------------------------------------
    def producer(self) -> EmbeddedProducer:
        """A new buffering producer."""
        return EmbeddedProducer(self)

    def consumer(self, group_id: str, topics: Sequence[str]) -> EmbeddedConsumer:
        """A new member of ``group_id``; it joins the group immediately."""
        for topic in topics:
            self.admit(topic)
        return EmbeddedConsumer(self, group_id, list(topics))

    def close(self) -> None:
        """Release pooled database connections."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


_Pending = tuple[str, int, bytes | None, bytes, bytes | None, int]  # topic, partition, key, ...


class EmbeddedProducer:
    """Buffers records and appends them to the log in one transaction per batch."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._buffer: list[_Pending] = []
        self._buffer_lock = threading.Lock()
        # Held while a batch is taken from the buffer and written, so batches reach the
        # log in publish order whichever thread (caller or linger thread) writes them.
        self._write_lock = threading.Lock()
        self._first_buffered = 0.0
        self._round_robin: dict[str, int] = {}
        self._errors: list[str] = []
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None = None,
    ) -> None:
        """Buffer one record; it becomes visible after the next (auto) flush."""
        if self._closed:
            raise BusError("producer is closed")
        self._bus.admit(topic)
        meta = self._bus.topic_meta(topic)
        if meta is None:
            raise BusError(f"unknown topic {topic!r}: create it first")
        key_bytes = normalise_key(key)
        record_headers = inject_trace_headers(normalise_headers(headers))
        if key_bytes is not None:
            partition = partition_for_key(key_bytes, meta.partitions)
        else:
            partition = self._round_robin.get(topic, 0) % meta.partitions
            self._round_robin[topic] = partition + 1
        blob = _encode_headers(record_headers)
        if meta.max_message_bytes is not None:
            size = len(value) + len(key_bytes or b"") + len(blob or b"")
            if size > meta.max_message_bytes:
                # Rejected like a broker would: reported by flush, not by publish.
                with self._buffer_lock:
                    self._errors.append(
                        f"record of {size} bytes exceeds max.message.bytes of {topic!r}"
                    )
                return
        with self._buffer_lock:
            if not self._buffer:
                self._first_buffered = time.monotonic()
            self._buffer.append((topic, partition, key_bytes, value, blob, _now_ms()))
            full = len(self._buffer) >= self._bus.batch_size
        if full:
            self._write_pending(raise_errors=False)
        elif self._thread is None:
            self._start_linger_thread()

    def _start_linger_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._linger_loop, name="fjo-embedded-producer", daemon=True
        )
        self._thread.start()

    def _linger_loop(self) -> None:
        linger_s = self._bus.linger_ms / 1000
        while not self._closed:
            self._wake.wait(linger_s)
            self._wake.clear()
            with self._buffer_lock:
                due = bool(self._buffer) and time.monotonic() - self._first_buffered >= linger_s
            if due:
                self._write_pending(raise_errors=False)

    def _write_pending(self, *, raise_errors: bool) -> None:
        with self._write_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self._append(batch)
            except SQLAlchemyError as exc:
                # Keep the records for the next flush: nothing is dropped on a failed write.
                with self._buffer_lock:
                    self._buffer[:0] = batch
                log.warning("embedded bus write failed: %s", type(exc).__name__)
                if raise_errors:
                    raise BusError(f"append failed: {type(exc).__name__}: {exc}") from exc
                return
        if self._bus.retention_due():
            try:
                self._bus.enforce_retention()
            except BusError as exc:  # the records are written; retention tries again later
                log.warning("embedded bus retention failed: %s", exc)

    def _append(self, batch: list[_Pending]) -> None:
        t = self._bus.tables
        by_partition: dict[tuple[str, int], list[_Pending]] = {}
        for rec in batch:
            by_partition.setdefault((rec[0], rec[1]), []).append(rec)
        with self._bus.engine.begin() as conn:
            # Sorted so that two producers lock partitions in the same order (no deadlock).
            for topic, partition in sorted(by_partition):
                recs = by_partition[(topic, partition)]
                high = conn.execute(
                    update(t.partitions)
                    .where(t.partitions.c.topic == topic, t.partitions.c.partition == partition)
                    .values(next_offset=t.partitions.c.next_offset + len(recs))
                    .returning(t.partitions.c.next_offset)
                ).scalar_one()
                base = int(high) - len(recs)
                if self._bus.sqlite_records_insert is not None:
                    # Straight to sqlite3's executemany: SQLAlchemy's per-row parameter
                    # processing cost more than the insert itself.
                    conn.exec_driver_sql(
                        self._bus.sqlite_records_insert,
                        [
                            (topic, partition, base + i, rec[2], rec[3], rec[4], rec[5])
                            for i, rec in enumerate(recs)
                        ],
                    )
                    continue
                conn.execute(
                    insert(t.records),
                    [
                        {
                            "topic": topic,
                            "partition": partition,
                            "offset": base + i,
                            "key": rec[2],
                            "value": rec[3],
                            "headers": rec[4],
                            "timestamp_ms": rec[5],
                        }
                        for i, rec in enumerate(recs)
                    ],
                )

    def flush(self, timeout_s: float | None = None) -> None:
        """Write everything buffered; raise ``BusError`` if a record was rejected or lost."""
        self._write_pending(raise_errors=True)
        with self._buffer_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise BusError(f"{len(errors)} record(s) were rejected; first: {errors[0]}")

    def close(self) -> None:
        """Flush, then stop the linger thread."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout=5)


class EmbeddedConsumer:
    """A consumer-group member reading its range of partitions from the log."""

    def __init__(self, bus: EmbeddedBus, group_id: str, topics: list[str]) -> None:
        self._bus = bus
        self.group_id = group_id
        self.member_id = uuid.uuid4().hex
        self._topics = sorted(set(topics))
        self._assigned: tuple[tuple[str, int], ...] = ()
        self._positions: dict[tuple[str, int], int] = {}
        self._rotate = 0
        self._closed = False
        self._stop = threading.Event()
        now = _now_ms()
        t = bus.tables
        try:
            with bus.engine.begin() as conn:
                conn.execute(
                    insert(t.group_members).values(
                        group_id=group_id,
                        member_id=self.member_id,
                        topics=json.dumps(self._topics),
                        heartbeat_ms=now,
                        session_timeout_ms=bus.session_timeout_ms,
                        joined_ms=now,
                    )
                )
        except SQLAlchemyError as exc:
            raise BusError(f"cannot join group {group_id!r}: {type(exc).__name__}") from exc
        # Liveness follows the process, not the poll rate, as with Kafka's heartbeat thread:
        # a slow handler keeps its partitions; a killed process loses them.
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name=f"fjo-embedded-heartbeat-{group_id}", daemon=True
        )
        self._heartbeat_thread.start()

    # -- membership -------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        interval_s = self._bus.heartbeat_interval_ms / 1000
        while not self._stop.wait(interval_s):
            try:
                self._heartbeat()
            except SQLAlchemyError as exc:
                log.warning("embedded bus heartbeat failed: %s", type(exc).__name__)

    def _heartbeat(self) -> None:
        t = self._bus.tables
        now = _now_ms()
        with self._bus.engine.begin() as conn:
            conn.execute(
                self._bus.upsert()(t.group_members)
                .values(
                    group_id=self.group_id,
                    member_id=self.member_id,
                    topics=json.dumps(self._topics),
                    heartbeat_ms=now,
                    session_timeout_ms=self._bus.session_timeout_ms,
                    joined_ms=now,
                )
                .on_conflict_do_update(
                    index_elements=["group_id", "member_id"], set_={"heartbeat_ms": now}
                )
            )
            # Forget members long dead so the table does not grow with every restart.
            conn.execute(
                delete(t.group_members).where(
                    t.group_members.c.group_id == self.group_id,
                    t.group_members.c.heartbeat_ms
                    < now - 10 * max(self._bus.session_timeout_ms, 60_000),
                )
            )

    def _compute_assignment(self, conn: Connection) -> tuple[tuple[str, int], ...]:
        t = self._bus.tables
        now = _now_ms()
        rows = conn.execute(
            select(
                t.group_members.c.member_id,
                t.group_members.c.topics,
                t.group_members.c.heartbeat_ms,
                t.group_members.c.session_timeout_ms,
            ).where(t.group_members.c.group_id == self.group_id)
        ).all()
        subscribers: dict[str, list[str]] = {}
        for row in rows:
            if row.member_id != self.member_id and row.heartbeat_ms + row.session_timeout_ms < now:
                continue  # dead: its session expired
            for topic in json.loads(row.topics):
                subscribers.setdefault(topic, []).append(row.member_id)
        assigned: list[tuple[str, int]] = []
        for topic in self._topics:
            meta = self._bus.topic_meta(topic)
            if meta is None:
                continue
            members = sorted(set(subscribers.get(topic, [])) | {self.member_id})
            # Range assignment, as Kafka's RangeAssignor: the first (n % m) members get one
            # partition more than the others.
            index = members.index(self.member_id)
            per, extra = divmod(meta.partitions, len(members))
            start = index * per + min(index, extra)
            count = per + (1 if index < extra else 0)
            assigned.extend((topic, p) for p in range(start, start + count))
        return tuple(assigned)

    def _committed(
        self, conn: Connection, partitions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        t = self._bus.tables
        wanted = set(partitions)
        if not wanted:
            return {}
        rows = conn.execute(
            select(
                t.group_offsets.c.topic,
                t.group_offsets.c.partition,
                t.group_offsets.c.committed_offset,
            ).where(
                t.group_offsets.c.group_id == self.group_id,
                t.group_offsets.c.topic.in_(sorted({tp[0] for tp in wanted})),
            )
        ).all()
        return {
            (r.topic, r.partition): int(r.committed_offset)
            for r in rows
            if (r.topic, r.partition) in wanted
        }

    def _refresh_assignment(self, conn: Connection) -> None:
        assigned = self._compute_assignment(conn)
        if assigned == self._assigned:
            return
        added = [tp for tp in assigned if tp not in self._positions]
        committed = self._committed(conn, added)
        positions = {tp: self._positions[tp] for tp in assigned if tp in self._positions}
        for tp in added:
            positions[tp] = committed.get(tp, 0)
        self._assigned, self._positions = assigned, positions

    # -- the Consumer port -----------------------------------------------------------------
    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_records`` records from this member's partitions, offset order per
        partition; waits up to ``timeout_s`` for some to arrive."""
        if self._closed:
            raise BusError("consumer is closed")
        deadline = time.monotonic() + max(0.0, timeout_s)
        interval = self._bus.poll_interval_ms / 1000
        while True:
            try:
                with self._bus.read_engine.connect() as conn:
                    self._refresh_assignment(conn)
                    out = self._fetch(conn, max_records)
            except SQLAlchemyError as exc:
                raise BusError(f"poll failed: {type(exc).__name__}: {exc}") from exc
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            time.sleep(min(interval, remaining))

    def _fetch(self, conn: Connection, max_records: int) -> list[Message]:
        if not self._assigned:
            return []
        t = self._bus.tables
        topics = sorted({tp[0] for tp in self._assigned})
        high = {
            (r.topic, r.partition): int(r.next_offset)
            for r in conn.execute(
                select(
                    t.partitions.c.topic, t.partitions.c.partition, t.partitions.c.next_offset
                ).where(t.partitions.c.topic.in_(topics))
            )
        }
        # Start at a different partition each poll so that one busy partition cannot
        # starve the others when max_records is reached.
        n = len(self._assigned)
        self._rotate = (self._rotate + 1) % n
        order = self._assigned[self._rotate :] + self._assigned[: self._rotate]
        out: list[Message] = []
        r = t.records.c
        for tp in order:
            budget = max_records - len(out)
            if budget <= 0:
                break
            position = self._positions[tp]
            if position >= high.get(tp, 0):
                continue
            topic, partition = tp
            rows = conn.execute(
                select(r.offset, r.key, r.value, r.headers, r.timestamp_ms)
                .where(r.topic == topic, r.partition == partition, r.offset >= position)
                .order_by(r.offset)
                .limit(budget)
            ).all()
            for off, key, value, headers, ts in rows:
                out.append(
                    Message(
                        topic,
                        partition,
                        off,
                        bytes(key) if key is not None else None,
                        bytes(value),
                        decode_headers(headers),
                        ts,
                    )
                )
            if rows:
                self._positions[tp] = int(rows[-1][0]) + 1
        return out

    def commit(self, messages: Sequence[Message]) -> None:
        """Commit, per partition, the highest offset among ``messages`` + 1.

        Only partitions this member still owns are committed; if any were reassigned
        meanwhile, ``BusError`` is raised after the others are committed (the new owner
        redelivers them), as Kafka refuses commits from a stale generation.
        """
        if not messages:
            return
        highest: dict[tuple[str, int], int] = {}
        for m in messages:
            tp = (m.topic, m.partition)
            if highest.get(tp, -1) < m.offset:
                highest[tp] = m.offset
        t = self._bus.tables
        now = _now_ms()
        try:
            with self._bus.engine.begin() as conn:
                owned = set(self._compute_assignment(conn))
                rows = [
                    {
                        "group_id": self.group_id,
                        "topic": tp[0],
                        "partition": tp[1],
                        "committed_offset": off + 1,
                        "updated_ms": now,
                    }
                    for tp, off in sorted(highest.items())
                    if tp in owned
                ]
                if rows:
                    stmt = self._bus.upsert()(t.group_offsets)
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["group_id", "topic", "partition"],
                            set_={
                                "committed_offset": stmt.excluded.committed_offset,
                                "updated_ms": stmt.excluded.updated_ms,
                            },
                        ),
                        rows,
                    )
        except SQLAlchemyError as exc:
            raise BusError(f"commit failed: {type(exc).__name__}: {exc}") from exc
        lost = sorted(tp for tp in highest if tp not in owned)
        if lost:
            raise BusError(f"commit refused for reassigned partitions {lost}")

    def seek_to_committed(self) -> None:
        """Rewind every assigned partition to the group's committed offset (or 0)."""
        try:
            with self._bus.read_engine.connect() as conn:
                committed = self._committed(conn, self._assigned)
        except SQLAlchemyError as exc:
            raise BusError(f"seek failed: {type(exc).__name__}: {exc}") from exc
        self._positions = {tp: committed.get(tp, 0) for tp in self._assigned}

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The partitions this member read at its last poll."""
        return frozenset(self._assigned)

    def close(self) -> None:
        """Leave the group at once, so the others take over its partitions on their next poll."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._heartbeat_thread.join(timeout=5)
        t = self._bus.tables
        try:
            with self._bus.engine.begin() as conn:
                conn.execute(
                    delete(t.group_members).where(
                        t.group_members.c.group_id == self.group_id,
                        t.group_members.c.member_id == self.member_id,
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("embedded bus leave failed: %s", type(exc).__name__)
