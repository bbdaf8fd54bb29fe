"""Retention of a service's own tables: rows past their period deleted in batches.

A service lists its tables as ``TableRule``s (how old a row is, how many days it is kept,
which rows may go at all) from its settings, and ``purge`` applies them: each batch of at
most ``batch_size`` rows is selected by primary key and deleted in a transaction of its own,
so a long backlog never holds one long transaction and a run that dies part way keeps what it
deleted. Running it again deletes nothing more (idempotent); two runs at once delete each row
once between them.

The worker's processed-message markers are a special case (``marker_rules``): a marker is what
makes a redelivered record a duplicate, so it is kept at least as long as any copy of its
record can come back, the retention of the topic it was read from and of the service's
dead-letter topic (a replay); a marker of a compacted topic, whose records stay on it, is never
deleted by age.

The log line of a run names tables and counts only, never a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Column, ColumnElement, Table, delete, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from contracts.topics import Topic
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.settings import TableRetentionSettings

__all__ = [
    "RetentionRefused",
    "TableRule",
    "marker_floor_days",
    "marker_rules",
    "purge",
    "purge_service",
]

log = logging.getLogger("fjo.retention")

_DAY_MS = 24 * 60 * 60 * 1000


class RetentionRefused(ValueError):
    """A configured period shorter than what replays or de-duplication still need."""


@dataclass(frozen=True)
class TableRule:
    """Rows of ``table`` whose ``age`` is older than ``days`` (and that match ``where``) go.

    ``dependents`` are tables whose rows point at this one's primary key (a foreign key
    column of theirs): those rows are deleted first, in the same transaction, so no database
    has to cascade.
    """

    name: str
    table: Table
    age: Column[datetime]
    days: int
    where: Sequence[ColumnElement[bool]] = ()
    dependents: Sequence[Column[object]] = ()
    why: str = ""

    def __post_init__(self) -> None:
        if self.days < 0:
            raise RetentionRefused(f"{self.name}: a period of {self.days} days")


def marker_floor_days(consumed: Iterable[Topic], dead_letters: Topic) -> int | None:
    """The fewest days a marker of ``consumed`` must be kept: the longest retention of those
    topics and of the dead-letter topic, rounded up to whole days; None when one of them is
    compacted (its records can be read again at any time)."""
    longest = 0
    for topic in (*consumed, dead_letters):
        if topic.retention == "compact":
            return None
        longest = max(longest, topic.retention)
    return -(-longest // _DAY_MS)


def marker_rules(
    markers: Table,
    *,
    group: str,
    consumed: Sequence[Topic],
    dead_letters: Topic,
    days: int,
) -> list[TableRule]:
    """One rule per consumed topic whose markers may go by age (none for a compacted one).

    Refuses (``RetentionRefused``) a ``days`` shorter than the topic's floor: deleting a
    marker while its record can still be redelivered or replayed would apply it twice."""
    rules = []
    for topic in consumed:
        floor = marker_floor_days([topic], dead_letters)
        if floor is None:
            continue
        if days < floor:
            raise RetentionRefused(
                f"processed-message markers of {topic.name} must be kept {floor} days at least "
                f"(its retention and {dead_letters.name}'s), not {days}"
            )
        c = markers.c
        rules.append(
            TableRule(
                f"{markers.name}[{topic.name}]",
                markers,
                c.processed_at,
                days,
                where=(c.consumer_group == group, c.topic == topic.name),
                why="past the retention of its topic and of the dead-letter topic",
            )
        )
    return rules


def purge(
    sessions: sessionmaker[Session],
    rules: Sequence[TableRule],
    *,
    service: str,
    now: datetime | None = None,
    batch_size: int = 1000,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, int]:
    """Apply ``rules`` in order; the rows deleted per rule name (0 for none)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    at = now or clock()
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule.name] = _purge_one(sessions, rule, at - timedelta(days=rule.days), batch_size)
    log.info(
        "retention run",
        extra={"event": "retention.run", "service": service, "deleted": dict(counts)},
    )
    return counts


def _purge_one(
    sessions: sessionmaker[Session], rule: TableRule, cutoff: datetime, batch_size: int
) -> int:
    key = list(rule.table.primary_key.columns)
    deleted = 0
    while True:
        with transaction(sessions) as session:
            rows = session.execute(
                select(*key).where(rule.age < cutoff, *rule.where).order_by(*key).limit(batch_size)
            ).all()
            if not rows:
                return deleted
            match = _keys_in(key, [tuple(r) for r in rows])
            for dependent in rule.dependents:  # they point at a one-column key
                session.execute(delete(dependent.table).where(dependent.in_([r[0] for r in rows])))
            result = session.execute(delete(rule.table).where(match))
            deleted += int(getattr(result, "rowcount", 0) or 0)
        if len(rows) < batch_size:
            return deleted


def _keys_in(
    key: Sequence[Column[object]], rows: Sequence[tuple[object, ...]]
) -> ColumnElement[bool]:
    if len(key) == 1:
        return key[0].in_([r[0] for r in rows])
    return tuple_(*key).in_(rows)


class _RetainingSettings(Protocol):
    """What the job reads of a service's settings."""

    @property
    def service_name(self) -> str: ...
    @property
    def database_url(self) -> str: ...
    @property
    def retention(self) -> TableRetentionSettings: ...


def purge_service(
    settings: _RetainingSettings,
    rules: Callable[[], Sequence[TableRule]],
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """``purge`` on a service's database (``settings.database_url``, opened for the run and
    closed after it) in batches of ``settings.retention.batch_size``."""
    engine = make_engine(settings.database_url)
    try:
        return purge(
            make_session_factory(engine),
            rules(),
            service=settings.service_name,
            now=now,
            batch_size=settings.retention.batch_size,
        )
    finally:
        engine.dispose()
