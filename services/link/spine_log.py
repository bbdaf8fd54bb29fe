"""The spine log: every spine version and every model, in one order all link replicas share.

A replica's view of the spine is a prefix of this log: "position p" names the same spine and
model in every process, which is what lets N replicas decide like one. Positions are dense
and appear in commit order: a writer takes them by bumping the single head row
(``UPDATE .. RETURNING``), which row-locks it on PostgreSQL until the writer commits (and
SQLite has one writer anyway), so a reader that sees position p has every position below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from services.link import storage as t
from services.runtime.db import insert_for

__all__ = [
    "ERASED",
    "EXCLUDE",
    "MODEL",
    "PERSON",
    "LogEntry",
    "append",
    "erase",
    "head",
    "read_after",
    "read_exclusions",
    "read_models",
]

PERSON = "person"
MODEL = "model"
EXCLUDE = "exclude"
"""A spine person taken out of linkage by an objection or erasure (payload: the request)."""
ERASED = "erased"
"""A spine person's version whose keyed encodings an erasure removed (payload ``{}``): its
position stays, so the log stays dense, and every view skips it."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One position of the log: a spine person's version (the record as link holds it, in
    its stored JSON form), a model (its JSON and how it came about) or a spine person's
    exclusion (the request that excluded them)."""

    position: int
    kind: str
    record_token: str | None
    payload: str


def _ensure_head(session: Session) -> None:
    session.execute(
        insert_for(session, t.log_head)
        .values(id=1, position=0)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def head(session: Session) -> int:
    """The last position written (0 for an empty log)."""
    value = session.execute(select(t.log_head.c.position).where(t.log_head.c.id == 1)).scalar()
    return int(value or 0)


def append(
    session: Session, entries: Sequence[tuple[str, str | None, int | None, str]]
) -> list[int]:
    """Append ``(kind, record_token, record_version, payload)`` entries; their positions.

    The head row stays locked until the caller's transaction ends: keep what follows short.
    """
    if not entries:
        return []
    bump = (
        update(t.log_head)
        .where(t.log_head.c.id == 1)
        .values(position=t.log_head.c.position + len(entries))
        .returning(t.log_head.c.position)
    )
    last = session.execute(bump).scalar()
    if last is None:
        _ensure_head(session)
        last = session.execute(bump).scalar_one()
    first = int(last) - len(entries) + 1
    now = datetime.now(UTC)
    session.execute(
        insert(t.spine_log),
        [
            {
                "position": first + i,
                "kind": kind,
                "record_token": token,
                "record_version": version,
                "payload": payload,
                "recorded_at": now,
            }
            for i, (kind, token, version, payload) in enumerate(entries)
        ],
    )
    return list(range(first, first + len(entries)))


def read_after(session: Session, position: int, limit: int = 5_000) -> list[LogEntry]:
    """Entries after ``position``, in order (at most ``limit``)."""
    c = t.spine_log.c
    rows = session.execute(
        select(c.position, c.kind, c.record_token, c.payload)
        .where(c.position > position)
        .order_by(c.position)
        .limit(limit)
    )
    return [LogEntry(int(p), k, tok, payload) for p, k, tok, payload in rows]


def read_models(session: Session, upto: int) -> list[LogEntry]:
    """The model entries at or before ``upto``, in order (a snapshot holds spine people, not
    models: a view started from one replays these)."""
    return _read_kind(session, MODEL, upto)


def read_exclusions(session: Session, upto: int) -> list[LogEntry]:
    """The exclusions at or before ``upto``, in order (a snapshot holds the index, not who
    was excluded: a view started from one reads them here)."""
    return _read_kind(session, EXCLUDE, upto)


def _read_kind(session: Session, kind: str, upto: int) -> list[LogEntry]:
    c = t.spine_log.c
    rows = session.execute(
        select(c.position, c.kind, c.record_token, c.payload)
        .where(c.kind == kind, c.position <= upto)
        .order_by(c.position)
    )
    return [LogEntry(int(p), k, tok, payload) for p, k, tok, payload in rows]


def erase(session: Session, record_tokens: Sequence[str]) -> int:
    """Rewrite every version of these spine people in the log as ``erased`` (no encodings
    left); the entries rewritten. Their ``exclude`` entries stay: they hold the spine token
    and the request, no encoding, and keep every replica excluding the person."""
    if not record_tokens:
        return 0
    c = t.spine_log.c
    return int(
        session.execute(
            update(t.spine_log)
            .where(c.record_token.in_(sorted(set(record_tokens))), c.kind == PERSON)
            .values(kind=ERASED, payload="{}")
        ).rowcount
        or 0
    )
