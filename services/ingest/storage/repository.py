"""Reads and writes of ingest's tables in the caller's session and transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.ingest.storage.models import AcceptedRecord, Delivery, DeliveryError
from services.runtime import pagination

__all__ = [
    "ClaimKey",
    "claim_records",
    "decode_cursor",
    "encode_cursor",
    "find_by_content",
    "find_by_idempotency_key",
    "holders_of",
    "list_deliveries",
    "quarantine_counts",
    "quarantine_reasons",
]

ClaimKey = tuple[str, int]
"""(record_id, record_version) within one source and record type."""


def find_by_idempotency_key(session: Session, source: str, key: str) -> Delivery | None:
    """The caller's delivery sent with this ``Idempotency-Key``, if any."""
    return session.scalars(
        select(Delivery).where(Delivery.source == source, Delivery.idempotency_key == key)
    ).first()


def find_by_content(
    session: Session, source: str, record_type: str, content_sha256: str
) -> Delivery | None:
    """The caller's earliest completed delivery of the same kind with the same content."""
    return session.scalars(
        select(Delivery)
        .where(
            Delivery.source == source,
            Delivery.record_type == record_type,
            Delivery.content_sha256 == content_sha256,
            Delivery.status == "complete",
        )
        .order_by(Delivery.created_at, Delivery.id)
        .limit(1)
    ).first()


def claim_records(
    session: Session,
    *,
    source: str,
    record_type: str,
    delivery_id: str,
    rows: Sequence[tuple[str, int, int]],
    now: datetime,
) -> set[ClaimKey]:
    """Insert (record_id, version, line) rows that are new; return the keys this call claimed.

    ``ON CONFLICT DO NOTHING`` makes the unique constraint the arbiter: on PostgreSQL a
    concurrent, uncommitted claim of the same key makes this wait, then skip it.
    """
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert_fn(AcceptedRecord)
        .on_conflict_do_nothing(
            index_elements=["source", "record_type", "record_id", "record_version"]
        )
        .returning(AcceptedRecord.record_id, AcceptedRecord.record_version)
    )
    params = [
        {
            "source": source,
            "record_type": record_type,
            "record_id": record_id,
            "record_version": version,
            "delivery_id": delivery_id,
            "line": line,
            "accepted_at": now,
        }
        for record_id, version, line in rows
    ]
    result = session.execute(stmt, params)
    return {(rid, ver) for rid, ver in result.all()}


def holders_of(
    session: Session, *, source: str, record_type: str, keys: Iterable[ClaimKey]
) -> dict[ClaimKey, tuple[str, int]]:
    """For already-accepted keys: the (delivery id, line) that accepted each."""
    keys = list(keys)
    found: dict[ClaimKey, tuple[str, int]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(
                AcceptedRecord.record_id,
                AcceptedRecord.record_version,
                AcceptedRecord.delivery_id,
                AcceptedRecord.line,
            ).where(
                AcceptedRecord.source == source,
                AcceptedRecord.record_type == record_type,
                tuple_(AcceptedRecord.record_id, AcceptedRecord.record_version).in_(chunk),
            )
        )
        for rid, ver, delivery_id, line in rows:
            found[(rid, ver)] = (delivery_id, line)
    return found


def clear_errors(session: Session, delivery_id: str) -> None:
    """Forget a delivery's stored errors (before it is processed again)."""
    session.execute(delete(DeliveryError).where(DeliveryError.delivery_id == delivery_id))


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of deliveries ends: newest first, by (created_at, id)."""

    created_at: datetime
    id: str


def encode_cursor(delivery: Delivery) -> str:
    """An opaque page cursor pointing after ``delivery``."""
    return pagination.encode_cursor(delivery.created_at.isoformat(), delivery.id)


def decode_cursor(value: str) -> Cursor:
    """The cursor ``encode_cursor`` made; ValueError when it is not one."""
    created, ident = pagination.decode_cursor(value, 2)
    return Cursor(datetime.fromisoformat(created), ident)


def list_deliveries(
    session: Session, source: str, *, limit: int, after: Cursor | None
) -> list[Delivery]:
    """The caller's deliveries, newest first, ``limit`` at most, after ``after``."""
    stmt: Select[Delivery] = select(Delivery).where(Delivery.source == source)
    if after is not None:
        stmt = stmt.where(
            or_(
                Delivery.created_at < after.created_at,
                and_(Delivery.created_at == after.created_at, Delivery.id < after.id),
            )
        )
    stmt = stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def quarantine_counts(session: Session) -> Sequence[Row[tuple[str, str, int, int, int]]]:
    """Per source and record type: deliveries with rejections, rejected records, and errors
    past the receipts' limit."""
    return session.execute(
        select(
            Delivery.source,
            Delivery.record_type,
            func.count(),
            func.sum(Delivery.rejected),
            func.sum(Delivery.errors_omitted),
        )
        .where(Delivery.rejected > 0)
        .group_by(Delivery.source, Delivery.record_type)
        .order_by(Delivery.source, Delivery.record_type)
    ).all()


def quarantine_reasons(session: Session) -> Sequence[Row[tuple[str, str, str, str, int]]]:
    """Stored per-record errors counted by source, record type, error type and field path,
    most frequent first."""
    n = func.count(DeliveryError.id)
    return session.execute(
        select(Delivery.source, Delivery.record_type, DeliveryError.type, DeliveryError.path, n)
        .join(Delivery, Delivery.id == DeliveryError.delivery_id)
        .group_by(Delivery.source, Delivery.record_type, DeliveryError.type, DeliveryError.path)
        .order_by(
            n.desc(), Delivery.source, Delivery.record_type, DeliveryError.type, DeliveryError.path
        )
    ).all()
