"""Ingest's own tables: deliveries with their receipts, and the index of accepted records.

The accepted-record index is what makes re-sent records idempotent without holding every
key in memory: a unique constraint on (source, type, id, version), claimed in batches with
``INSERT ... ON CONFLICT DO NOTHING``. It lives in the ingest database, inside the
identifiable zone; nothing here leaves the service.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "VERSION_TABLE",
    "AcceptedRecord",
    "Base",
    "Delivery",
    "DeliveryError",
    "Objection",
]

VERSION_TABLE = "alembic_version_ingest"

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of ingest's schema (its own metadata, its own migrations)."""

    metadata = MetaData(naming_convention=_NAMING)


class Delivery(Base):
    """One delivery from one partner: what was sent, how far it got, and its counts."""

    __tablename__ = "ingest_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    content_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    body_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    errors_omitted: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("source", "idempotency_key", name="uq_ingest_deliveries_idempotency"),
        Index("ix_ingest_deliveries_content", "source", "record_type", "content_sha256"),
        Index("ix_ingest_deliveries_listing", "source", "created_at", "id"),
    )


class DeliveryError(Base):
    """A per-record error of a delivery: where (line, field path) and what, never the value."""

    __tablename__ = "ingest_delivery_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ingest_deliveries.id", ondelete="CASCADE"), index=True
    )
    line: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(512))
    message: Mapped[str] = mapped_column(String(1000))
    type: Mapped[str] = mapped_column(String(100))


class AcceptedRecord(Base):
    """A record version ingest has published: re-sending it counts as a duplicate."""

    __tablename__ = "ingest_accepted_records"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36))
    line: Mapped[int] = mapped_column(BigInteger)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Objection(Base):
    """An objection, erasure request or opt-out ingest gave a receipt for: the request as
    sent (no free text: its reason is a code) and when it came."""

    __tablename__ = "ingest_objections"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(16))
    record_type: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("source", "request_id", name="uq_ingest_objections_request"),
        Index("ix_ingest_objections_listing", "received_at", "receipt_id"),
    )
