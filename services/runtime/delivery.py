"""The worker's delivery loop: at-least-once from the bus, exactly-once effect in the service.

For each poll batch the worker opens one database transaction. Every message is looked up
in ``processed_messages`` (by its ``fjo-event-id`` header, else by topic/partition/offset);
a new one is dispatched to its handler inside a SAVEPOINT and gets a marker row; then the
producer is flushed (handler outputs and dead letters are durable before their input counts
as processed), the transaction commits, and only then are bus offsets committed. A crash
anywhere before the offset commit redelivers the batch, and the markers turn it into skips.

Batch handlers: a service may register a ``BatchHandler`` for an event type. A run of
consecutive records of that type (bus order kept, no event id twice) is then handed over at
once inside one SAVEPOINT, so the service can read and write its state in a few statements
instead of a few per record. If the run fails, its savepoint is rolled back and its records
go through one at a time (each a run of one, in a savepoint of its own), so a poison record
is isolated exactly as it is without batching.

Failures: the savepoint is rolled back, the attempt is counted in memory, the rest of that
partition waits (per-key order holds) and the partition is rewound to its committed offset
after a backoff. After ``max_attempts`` (or at once, for a non-retryable error such as an
undecodable record) the original record goes to the dead-letter topic with the error type
and a redacted, truncated error text, never the record's value, and is marked settled.

Suppressed records: a handler may settle a record on purpose without any effect (pseudonymise
drops a record re-sent after its erasure): ``Suppressed(reason)`` from a handler, or
``Batch.suppress(message, reason)`` from a batch handler. The record is marked
``suppressed`` with that reason, in the same transaction as the batch's other writes, and is
neither published on nor dead-lettered (a dead letter would copy its value to another topic).
So what a worker was handed always reconciles: processed + dead-lettered + suppressed.

The runtime knows no business events: handlers are registered by the ``fjo-type`` header
(or by a ``dispatch_key`` function), and ``"*"`` is a catch-all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import TracerProvider
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from services.runtime.bus.api import Bus, BusError, Consumer, Message, Producer
from services.runtime.bus.tracing import consumer_span
from services.runtime.db import transaction

__all__ = [
    "DLQ_ATTEMPTS",
    "DLQ_CONSUMER_GROUP",
    "DLQ_ERROR",
    "DLQ_ERROR_TYPE",
    "DLQ_ORIGINAL_OFFSET",
    "DLQ_ORIGINAL_PARTITION",
    "DLQ_ORIGINAL_TOPIC",
    "EVENT_ID_HEADER",
    "TYPE_HEADER",
    "Batch",
    "BatchHandler",
    "Handler",
    "PoisonMessage",
    "RetryBatch",
    "Suppressed",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "create_runtime_tables",
    "message_key",
    "processed_messages",
    "processed_messages_table",
    "runtime_metadata",
]

log = logging.getLogger(__name__)

Handler = Callable[[Session, Message], None]


@dataclass(frozen=True)
class Batch:
    """Records of one event type handed to a ``BatchHandler``, in bus order.

    ``span(message)`` opens that record's CONSUMER span (a child of its producer's trace):
    a batch handler does each record's own work, and publishes its outputs, inside it, so
    traces and trace headers stay per record. ``suppress(message, reason)`` settles one of
    them as suppressed (see the module's docstring) instead of processed.
    """

    messages: Sequence[Message]
    span: Callable[[Message], AbstractContextManager[object]]
    suppressed: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def suppress(self, message: Message, reason: str) -> None:
        """Settle ``message`` as suppressed with ``reason`` (a short code, no identifier)
        once the batch commits; the handler publishes nothing for it."""
        if not any(m is message for m in self.messages):
            raise ValueError("suppress() takes one of the batch's own messages")
        self.suppressed[id(message)] = reason[:REASON_MAX_CHARS]


BatchHandler = Callable[[Session, Batch], None]

EVENT_ID_HEADER = "fjo-event-id"
TYPE_HEADER = "fjo-type"
DLQ_ERROR_TYPE = "fjo-dlq-error-type"
DLQ_ERROR = "fjo-dlq-error"
DLQ_ATTEMPTS = "fjo-dlq-attempts"
DLQ_ORIGINAL_TOPIC = "fjo-dlq-original-topic"
DLQ_ORIGINAL_PARTITION = "fjo-dlq-original-partition"
DLQ_ORIGINAL_OFFSET = "fjo-dlq-original-offset"
DLQ_CONSUMER_GROUP = "fjo-dlq-consumer-group"

OUTCOME_PROCESSED = "processed"
OUTCOME_DEAD_LETTERED = "dead_lettered"
OUTCOME_SUPPRESSED = "suppressed"
REASON_MAX_CHARS = 255
# Markers written before the reason column existed.
REASON_NOT_RECORDED = "(not recorded)"


class PoisonMessage(Exception):
    """A record that can never be handled (undecodable, unknown type): dead-lettered at once."""


class Suppressed(Exception):
    """Raised by a handler to settle its record on purpose without effect: the record is
    marked ``suppressed`` with ``reason`` (its savepoint rolled back), neither retried nor
    dead-lettered. ``reason`` is a short code and must not name the record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:REASON_MAX_CHARS]


class RetryBatch(Exception):
    """Raised by a handler when the whole batch must be tried again later, the records being
    blameless (the service lost its claim to a partition, a row changed under it): the
    batch's transaction is rolled back and the consumer rewound, no attempt is counted and
    nothing is dead-lettered."""


def processed_messages_table(metadata: MetaData, name: str = "processed_messages") -> Table:
    """Define the marker table on a service's ``metadata`` (for its Alembic migrations);
    ``name`` lets services that share one database keep their markers apart."""
    return Table(
        name,
        metadata,
        Column("consumer_group", String(255), primary_key=True),
        # "event:<fjo-event-id>" or "offset:<topic>/<partition>/<offset>", see message_key().
        Column("message_key", String(512), primary_key=True),
        Column("topic", String(249), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        # A dead letter's error type (``fjo-dlq-error-type``), so its reason is as durable and
        # as shared by the replicas as its marker; NULL when processed.
        Column("reason", String(REASON_MAX_CHARS), nullable=True),
    )


runtime_metadata = MetaData()
processed_messages = processed_messages_table(runtime_metadata)


def create_runtime_tables(engine: Engine) -> None:
    """Create the runtime's own tables (tests and the embedded demo; services use Alembic)."""
    runtime_metadata.create_all(engine)


def message_key(message: Message) -> str:
    """The idempotency key: the event id when the producer set one, else the record position.

    The event id also catches a record published twice (a producer retry, a re-sent
    delivery), which the position alone cannot.
    """
    event_id = message.header(EVENT_ID_HEADER)
    if event_id:
        return "event:" + event_id.decode("utf-8", errors="replace")
    return f"offset:{message.topic}/{message.partition}/{message.offset}"


def _type_header(message: Message) -> str:
    raw = message.header(TYPE_HEADER)
    if raw is None:
        raise PoisonMessage(f"no {TYPE_HEADER} header")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PoisonMessage(f"{TYPE_HEADER} header is not UTF-8") from exc


def describe_error(exc: BaseException, value: bytes, limit: int = 500) -> str:
    """The error text for a dead letter: no input values, never the record's value."""
    if isinstance(exc, ValidationError):
        # pydantic's str() quotes the offending input; the structured form can leave it out.
        text = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
    else:
        text = str(exc)
    if len(value) >= 8:
        decoded = value.decode("utf-8", errors="replace")
        for needle in (decoded, repr(value)):
            if needle in text:
                text = text.replace(needle, "<value redacted>")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


@dataclass
class WorkerStats:
    """Counters for metrics; ``consumed`` counts deliveries, so redeliveries count again."""

    consumed: int = 0
    processed: int = 0
    skipped_duplicates: int = 0
    dead_lettered: int = 0
    suppressed: int = 0
    failed_attempts: int = 0
    batches: int = 0
    batch_failures: int = 0
    commit_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for JSON logs and metric exporters)."""
        return asdict(self)


@dataclass
class _BatchCounts:
    processed: int = 0
    skipped: int = 0
    dead: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker consumes, where the records it cannot handle go, and its pacing."""

    group_id: str
    topics: tuple[str, ...]
    dead_letter_topic: str
    """No default: a made-up name would be a topic nobody reads (services take the topic
    registry's, ``services.runtime.worker_process.worker_config``)."""
    max_attempts: int = 3
    max_batch: int = 100
    poll_timeout_s: float = 1.0
    retry_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    error_max_chars: int = 500

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


class Worker:
    """A consumer-group member that applies each record's effect exactly once.

    ``handlers`` (one record at a time) and ``batch_handlers`` (runs of records) are keyed by
    event type (``dispatch_key``, by default the ``fjo-type`` header; ``"*"`` catches all).
    """

    def __init__(
        self,
        bus: Bus,
        config: WorkerConfig,
        session_factory: sessionmaker[Session],
        *,
        handlers: Mapping[str, Handler] | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        dispatch_key: Callable[[Message], str] | None = None,
        on_idle: Callable[[], None] | None = None,
        producer: Producer | None = None,
        processed_table: Table = processed_messages,
        non_retryable: tuple[type[BaseException], ...] = (PoisonMessage,),
        after_db_commit: Callable[[Sequence[Message]], None] | None = None,
        tracer_provider: TracerProvider | None = None,
        before_batch: Callable[[Sequence[Message]], None] | None = None,
    ) -> None:
        self.config = config
        self.batch_handlers = dict(batch_handlers or {})
        # Called after a poll that brought nothing: a service's chance to do deferred work
        # (link re-estimates its model for a grown spine) while no record waits for it.
        self.on_idle = on_idle
        # Called with each polled batch before its transaction opens: work the service must
        # commit on its own first (link catches its spine view up and claims partitions).
        # If it raises, the batch is not processed now: the consumer rewinds and polls again.
        self.before_batch = before_batch
        self.bus = bus
        self.handlers = dict(handlers or {})
        self.session_factory = session_factory
        self.dispatch_key = dispatch_key or _type_header
        self.non_retryable: tuple[type[BaseException], ...] = (PoisonMessage, *non_retryable)
        self.after_db_commit = after_db_commit
        self.tracer_provider = tracer_provider
        self.table = processed_table
        self.stats = WorkerStats()
        # Handler outputs go through this producer too, so flushing it before the DB commit
        # makes them durable before their input is marked processed.
        self._owns_producer = producer is None
        self.producer: Producer = producer if producer is not None else bus.producer()
        self.consumer: Consumer = bus.consumer(config.group_id, list(config.topics))
        self._attempts: dict[tuple[str, int, int], int] = {}
        self._failed_batches_in_row = 0
        self._stop: threading.Event | None = None

    @property
    def group_id(self) -> str:
        return self.config.group_id

    @property
    def topics(self) -> list[str]:
        return list(self.config.topics)

    # -- loop ---------------------------------------------------------------------------------
    def run(self, stop_event: threading.Event) -> None:
        """Process batches until ``stop_event`` is set, then close."""
        self._stop = stop_event
        try:
            while not stop_event.is_set():
                try:
                    self.run_once()
                except BusError as exc:
                    log.error("bus error in worker %s: %s", self.group_id, exc)
                    self._sleep(self.config.retry_backoff_s)
        finally:
            self.close()

    def run_once(self, timeout_s: float | None = None) -> int:
        """Poll one batch and settle what can be settled; returns the number delivered."""
        messages = self.consumer.poll(
            # After a rolled-back batch, go one record at a time until one commits, so a
            # record that fails only at commit time cannot hold its neighbours hostage.
            max_records=1 if self._failed_batches_in_row else self.config.max_batch,
            timeout_s=self.config.poll_timeout_s if timeout_s is None else timeout_s,
        )
        if not messages:
            if self.on_idle is not None:
                try:
                    self.on_idle()
                except Exception as exc:
                    log.warning(
                        "worker %s: idle task failed: %s", self.group_id, type(exc).__name__
                    )
            return 0
        self.stats.consumed += len(messages)
        self.stats.batches += 1
        if self.before_batch is not None:
            try:
                self.before_batch(messages)
            except Exception as exc:
                self.stats.batch_failures += 1
                self._failed_batches_in_row += 1
                log.warning(
                    "worker %s: preparing a batch of %d failed: %s",
                    self.group_id,
                    len(messages),
                    type(exc).__name__,
                )
                self._rewind(self._failed_batches_in_row)
                return len(messages)
        self._process(messages)
        return len(messages)

    def close(self) -> None:
        """Leave the group; flush and close the producer if the worker made it."""
        try:
            self.consumer.close()
        finally:
            if self._owns_producer:
                self.producer.close()

    # -- one batch ----------------------------------------------------------------------------
    def _process(self, messages: list[Message]) -> None:
        keys = {id(m): message_key(m) for m in messages}
        settled: list[Message] = []
        blocked: set[tuple[str, int]] = set()
        retry_attempts = 0
        counts = _BatchCounts()
        try:
            with transaction(self.session_factory) as session:
                markers = self._markers(session, keys.values())
                new_rows: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []

                def settle(
                    m: Message, outcome: str, marker: Any, reason: str | None = None
                ) -> None:
                    key = keys[id(m)]
                    row = {
                        "consumer_group": self.group_id,
                        "message_key": key,
                        "topic": m.topic,
                        "partition": m.partition,
                        "offset": m.offset,
                        "outcome": outcome,
                        "processed_at": datetime.now(UTC),
                        "reason": reason,
                    }
                    # A replayed dead letter (same event id, new record) replaces its marker.
                    (updates if marker is not None else new_rows).append(row)
                    markers[key] = (outcome, m.topic, m.partition, m.offset)
                    if outcome == OUTCOME_PROCESSED:
                        counts.processed += 1
                    elif outcome == OUTCOME_SUPPRESSED:
                        counts.suppressed += 1
                    else:
                        counts.dead += 1
                    settled.append(m)

                def skip(m: Message) -> None:  # settled before: nothing to do
                    counts.skipped += 1
                    settled.append(m)

                i = 0
                while i < len(messages):
                    m = messages[i]
                    i += 1
                    if (m.topic, m.partition) in blocked:
                        continue
                    marker = markers.get(keys[id(m)])
                    if marker is not None and _settles(marker, m):
                        skip(m)
                        continue
                    run: list[Message] = [m]
                    name = self._batch_name(m) if marker is None else None
                    if name is not None:
                        i = self._extend_run(run, skip, name, messages, i, keys, markers, blocked)
                        done = self._handle_run(session, name, run) if len(run) > 1 else None
                        if done is not None:
                            for r in run:
                                if id(r) in done:
                                    settle(r, OUTCOME_SUPPRESSED, None, done[id(r)])
                                else:
                                    settle(r, OUTCOME_PROCESSED, None)
                            continue
                    # One at a time: no batch handler, a run of one, or a failed run (whose
                    # records have no marker: the run holds none and each event id once).
                    for r in run:
                        tp = (r.topic, r.partition)
                        if tp in blocked:
                            continue
                        settled_as = self._handle(session, r)
                        if settled_as is None:  # failed; retried after a rewind
                            blocked.add(tp)
                            retry_attempts = max(retry_attempts, self._attempts.get(_pos(r), 1))
                            continue
                        outcome, reason = settled_as
                        settle(r, outcome, marker if r is m else None, reason)
                self._write_markers(session, new_rows, updates)
                self.producer.flush()
        except Exception as exc:
            # The whole batch rolled back (database down, a flush failed, another member
            # settled one of these first): nothing is settled; rewind and try again later.
            # Not dead-lettered: the record is not known to be at fault.
            self.stats.batch_failures += 1
            self._failed_batches_in_row += 1
            log.warning(
                "worker %s: batch of %d rolled back: %s",
                self.group_id,
                len(messages),
                type(exc).__name__,
            )
            self._rewind(self._failed_batches_in_row)
            return
        self._failed_batches_in_row = 0
        self.stats.processed += counts.processed
        self.stats.skipped_duplicates += counts.skipped
        self.stats.dead_lettered += counts.dead
        self.stats.suppressed += counts.suppressed
        for m in settled:
            self._attempts.pop(_pos(m), None)
        if self.after_db_commit is not None:
            self.after_db_commit(settled)
        if settled:
            try:
                self.consumer.commit(settled)
            except BusError as exc:
                # The partition moved to another member, which will redeliver and skip.
                self.stats.commit_failures += 1
                log.warning("worker %s: offset commit failed: %s", self.group_id, exc)
        if blocked:
            self._rewind(retry_attempts)

    def _batch_name(self, m: Message) -> str | None:
        """The event type of ``m`` if a batch handler takes it (else one at a time)."""
        if not self.batch_handlers:
            return None
        try:
            name = self.dispatch_key(m)
        except Exception:
            return None  # the one-at-a-time path dead-letters it with the reason
        return name if name in self.batch_handlers else None

    def _extend_run(
        self,
        run: list[Message],
        skip: Callable[[Message], None],
        name: str,
        messages: list[Message],
        i: int,
        keys: Mapping[int, str],
        markers: Mapping[str, Any],
        blocked: set[tuple[str, int]],
    ) -> int:
        """Add the records after ``run[0]`` that can join its run; returns the next index.

        The run stops at the first record of another type, one whose event id is already in
        the run (a duplicate must see the first one's marker) or a replayed dead letter, so
        bus order is kept. Records settled by their marker on the way are ``skip``ped.
        """
        seen = {keys[id(run[0])]}
        while i < len(messages):
            n = messages[i]
            if (n.topic, n.partition) in blocked:
                i += 1
                continue
            key = keys[id(n)]
            marker = markers.get(key)
            if marker is not None and _settles(marker, n):
                skip(n)
            elif marker is not None or key in seen or self._batch_name(n) != name:
                break
            else:
                seen.add(key)
                run.append(n)
            i += 1
        return i

    def _handle_run(self, session: Session, name: str, run: list[Message]) -> dict[int, str] | None:
        """Hand ``run`` to its batch handler in one savepoint: the reasons of the records it
        suppressed (by ``id``), or None (rolled back) if it failed, and the caller then takes
        its records one at a time."""

        def span(m: Message) -> AbstractContextManager[object]:
            return consumer_span(
                m,
                group_id=self.group_id,
                system=self.bus.name,
                tracer_provider=self.tracer_provider,
            )

        batch = Batch(run, span)
        try:
            with session.begin_nested():
                self.batch_handlers[name](session, batch)
        except RetryBatch:
            raise
        except Exception as exc:
            log.info(
                "worker %s: a run of %d %s records failed (%s); taking them one at a time",
                self.group_id,
                len(run),
                name,
                type(exc).__name__,
            )
            return None
        return dict(batch.suppressed)

    def dead_lettered_by_topic(self) -> dict[str, int]:
        """Records of this group whose marker says dead-lettered, by the topic they came
        from: durable and shared by every replica (a replayed dead letter that then went
        through is marked processed and no longer counts)."""
        return self._settled_by(self.table.c.topic)

    def dead_lettered_by_reason(self) -> dict[str, int]:
        """The same markers by the error type that dead-lettered them: durable and the
        group's like ``dead_lettered_by_topic`` (they add up to the same total)."""
        return self._settled_by(self.table.c.reason)

    def suppressed_by_reason(self) -> dict[str, int]:
        """Records of this group settled as suppressed, by reason: durable and the group's,
        like the dead-letter counts."""
        return self._settled_by(self.table.c.reason, OUTCOME_SUPPRESSED)

    def _settled_by(self, column: Any, outcome: str = OUTCOME_DEAD_LETTERED) -> dict[str, int]:
        """This group's markers of ``outcome``, counted by ``column``."""
        c = self.table.c
        with self.session_factory() as session:
            rows = session.execute(
                select(column, func.count())
                .where(c.consumer_group == self.group_id, c.outcome == outcome)
                .group_by(column)
            ).all()
        counts: Counter[str] = Counter()
        for value, n in rows:
            counts[value or REASON_NOT_RECORDED] += int(n)  # only a reason can be NULL
        return dict(sorted(counts.items()))

    def _rewind(self, attempt: int) -> None:
        self._sleep(
            min(self.config.max_backoff_s, self.config.retry_backoff_s * 2 ** max(0, attempt - 1))
        )
        try:
            self.consumer.seek_to_committed()
        except BusError as exc:
            log.warning("worker %s: seek failed: %s", self.group_id, exc)

    def _sleep(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _markers(self, session: Session, keys: Any) -> dict[str, tuple[str, str, int, int]]:
        c = self.table.c
        wanted = sorted(set(keys))
        rows = session.execute(
            select(c.message_key, c.outcome, c.topic, c.partition, c.offset).where(
                c.consumer_group == self.group_id, c.message_key.in_(wanted)
            )
        ).all()
        return {r.message_key: (r.outcome, r.topic, r.partition, r.offset) for r in rows}

    def _write_markers(
        self, session: Session, new_rows: list[dict[str, Any]], updates: list[dict[str, Any]]
    ) -> None:
        if new_rows:
            session.execute(insert(self.table), new_rows)
        c = self.table.c
        for row in updates:
            session.execute(
                update(self.table)
                .where(
                    c.consumer_group == row["consumer_group"],
                    c.message_key == row["message_key"],
                )
                .values(
                    topic=row["topic"],
                    partition=row["partition"],
                    offset=row["offset"],
                    outcome=row["outcome"],
                    processed_at=row["processed_at"],
                    reason=row["reason"],
                )
            )

    def _handle(self, session: Session, m: Message) -> tuple[str, str | None] | None:
        """Run the handler for ``m``: the outcome to mark and, for a dead letter, its error
        type; or ``None`` to retry it later."""
        pos = _pos(m)
        try:
            handler = self._resolve(m)
            # Leaving begin_nested() flushes the handler's writes inside its savepoint, so a
            # constraint violation fails this record here rather than the whole batch later.
            with (
                consumer_span(
                    m,
                    group_id=self.group_id,
                    system=self.bus.name,
                    tracer_provider=self.tracer_provider,
                ),
                session.begin_nested(),
            ):
                handler(session, m)
            return OUTCOME_PROCESSED, None
        except RetryBatch:
            raise
        except Suppressed as exc:
            return OUTCOME_SUPPRESSED, exc.reason
        except self.non_retryable as exc:
            self.stats.failed_attempts += 1
            attempts = self._attempts.get(pos, 0) + 1
            return OUTCOME_DEAD_LETTERED, self._dead_letter(m, exc, attempts)
        except Exception as exc:
            self.stats.failed_attempts += 1
            attempts = self._attempts[pos] = self._attempts.get(pos, 0) + 1
            if len(self._attempts) > 100_000:
                # Entries of partitions moved to other members are never settled here.
                self._attempts.pop(next(iter(self._attempts)))
            log.warning(
                "worker %s: %s/%d@%d failed (attempt %d of %d): %s",
                self.group_id,
                m.topic,
                m.partition,
                m.offset,
                attempts,
                self.config.max_attempts,
                type(exc).__name__,
            )
            if attempts >= self.config.max_attempts:
                return OUTCOME_DEAD_LETTERED, self._dead_letter(m, exc, attempts)
            return None

    def _resolve(self, m: Message) -> Handler:
        try:
            name = self.dispatch_key(m)
        except PoisonMessage:
            raise
        except Exception as exc:
            raise PoisonMessage(f"cannot dispatch: {type(exc).__name__}") from exc
        handler = self.handlers.get(name)
        if handler is None and name in self.batch_handlers:
            batch_handler = self.batch_handlers[name]

            def handler(session: Session, m: Message) -> None:
                # _handle has opened the record's span already.
                batch = Batch((m,), lambda _m: nullcontext())
                batch_handler(session, batch)
                if id(m) in batch.suppressed:
                    raise Suppressed(batch.suppressed[id(m)])

        handler = handler or self.handlers.get("*")
        if handler is None:
            raise PoisonMessage(f"no handler for event type {name!r}")
        return handler

    def _dead_letter(self, m: Message, exc: BaseException, attempts: int) -> str:
        """Publish ``m`` to the dead-letter topic; returns its error type."""
        error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"[:REASON_MAX_CHARS]
        headers = [
            *((k, v) for k, v in m.headers if not k.startswith("fjo-dlq-")),
            (DLQ_ERROR_TYPE, error_type.encode()),
            (DLQ_ERROR, describe_error(exc, m.value, self.config.error_max_chars).encode()),
            (DLQ_ATTEMPTS, str(attempts).encode()),
            (DLQ_ORIGINAL_TOPIC, m.topic.encode()),
            (DLQ_ORIGINAL_PARTITION, str(m.partition).encode()),
            (DLQ_ORIGINAL_OFFSET, str(m.offset).encode()),
            (DLQ_CONSUMER_GROUP, self.group_id.encode()),
        ]
        log.error(
            "worker %s: dead-lettering %s/%d@%d after %d attempt(s): %s",
            self.group_id,
            m.topic,
            m.partition,
            m.offset,
            attempts,
            error_type,
        )
        self.producer.publish(self.config.dead_letter_topic, m.value, key=m.key, headers=headers)
        return error_type


def _pos(m: Message) -> tuple[str, int, int]:
    return (m.topic, m.partition, m.offset)


def _settles(marker: tuple[str, str, int, int], m: Message) -> bool:
    """Whether an existing marker means ``m`` needs no handling.

    Processed (and suppressed) events are skipped wherever they reappear. A dead-lettered
    one is skipped only when it is the same record redelivered: a replay from the
    dead-letter topic (a new record with the same event id) is handled again.
    """
    outcome, topic, partition, offset = marker
    if outcome in (OUTCOME_PROCESSED, OUTCOME_SUPPRESSED):
        return True
    return (topic, partition, offset) == (m.topic, m.partition, m.offset)
