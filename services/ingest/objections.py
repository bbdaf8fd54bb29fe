"""Objections, erasure requests and opt-outs: store the request, publish it, give a receipt.

A request is stored and published in one step: the row is inserted in a transaction that
commits only once the bus has acknowledged the event, so a receipt always means the request
is on its way downstream, and a request the bus refused leaves no row (sending it again with
the same request id publishes it then). A repeated request id returns the first receipt.

The receipt id derives from (source, request id): an attempt the bus refused may still reach
it later (a producer's buffer is retried), and it is then the same request, with the same
receipt and event id, so downstream applies and counts it once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from contracts.events import ObjectionReceived
from contracts.objections import ObjectionKind, ObjectionRequest, ObjectionSubject
from contracts.records import SourceAgency
from services.ingest import events
from services.ingest.producers import ProducerPool
from services.ingest.schemas import ObjectionCount, ObjectionReceipt, ObjectionsReceived
from services.ingest.storage.models import Objection
from services.runtime.bus.api import BusError
from services.runtime.db import transaction

__all__ = [
    "ObjectionFailed",
    "ObjectionInProgress",
    "ObjectionOutcome",
    "ObjectionService",
    "RequestIdReused",
    "receipt_id_of",
]

log = logging.getLogger("fjo.ingest")


class RequestIdReused(Exception):
    """The request id was first used for a different request."""


class ObjectionInProgress(Exception):
    """A concurrent request with the same request id is being stored."""


class ObjectionFailed(Exception):
    """The bus or the database did not take the request; send it again with the same id."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ObjectionOutcome:
    """A request's receipt, and whether it is an earlier request's (a repeat)."""

    receipt: ObjectionReceipt
    replayed: bool


_RECEIPT_NAMESPACE = uuid.UUID("3c5d0f0a-9b61-4f4e-8f57-6b2a1c0d9e21")


def receipt_id_of(source: SourceAgency, request_id: str) -> uuid.UUID:
    """The receipt id of a partner's request id (the same on every attempt)."""
    return uuid.uuid5(_RECEIPT_NAMESPACE, f"{source.value}/{request_id}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _receipt(row: Objection) -> ObjectionReceipt:
    received = row.received_at
    return ObjectionReceipt(
        receipt_id=uuid.UUID(row.receipt_id),
        received_at=received if received.tzinfo else received.replace(tzinfo=UTC),
        request_id=row.request_id,
        kind=ObjectionKind(row.kind),
        subject=ObjectionSubject(row.subject),
        source=SourceAgency(row.source),
        record_type=row.record_type,
        record_id=row.record_id,
        reason=row.reason,
    )


def _same_request(row: Objection, request: ObjectionRequest) -> bool:
    return (
        row.kind,
        row.subject,
        row.record_type,
        row.record_id,
        row.reason,
    ) == (
        request.kind.value,
        request.subject.value,
        request.record_type.value,
        request.record_id,
        request.reason.value,
    )


class ObjectionService:
    """Receives requests and answers for their receipts; one instance per process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        producers: ProducerPool,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._producers = producers
        self._clock = clock

    def submit(self, request: ObjectionRequest) -> ObjectionOutcome:
        """Store and publish ``request`` (the caller checked who may send it), or return the
        receipt of the earlier request with the same id."""
        try:
            with transaction(self._sessions) as session:
                existing = self._find(session, request.source, request.request_id)
                if existing is not None:
                    if not _same_request(existing, request):
                        raise RequestIdReused(request.request_id)
                    return ObjectionOutcome(_receipt(existing), replayed=True)
                row = Objection(
                    receipt_id=str(receipt_id_of(request.source, request.request_id)),
                    source=request.source.value,
                    request_id=request.request_id,
                    kind=request.kind.value,
                    subject=request.subject.value,
                    record_type=request.record_type.value,
                    record_id=request.record_id,
                    reason=request.reason.value,
                    received_at=self._clock(),
                )
                session.add(row)
                session.flush()
                receipt = _receipt(row)
                event = ObjectionReceived(
                    receipt_id=receipt.receipt_id,
                    received_at=receipt.received_at,
                    request=request,
                )
                with self._producers.lend() as producer:
                    message = events.objection_received(event)
                    producer.publish(
                        message.topic, message.value, key=message.key, headers=message.headers
                    )
                    producer.flush()
        except IntegrityError as exc:
            raise ObjectionInProgress(request.request_id) from exc
        except (BusError, SQLAlchemyError) as exc:
            reason = "bus unavailable" if isinstance(exc, BusError) else "database unavailable"
            log.warning(
                "objection not received", extra={"reason": reason, "error": type(exc).__name__}
            )
            raise ObjectionFailed(reason) from exc
        log.info(
            "objection received",
            extra={
                "audit": "objection.received",
                "receipt_id": str(receipt.receipt_id),
                "kind": request.kind.value,
                "subject": request.subject.value,
                "source": request.source.value,
            },
        )
        return ObjectionOutcome(receipt, replayed=False)

    def receipt(self, receipt_id: uuid.UUID, source: SourceAgency) -> ObjectionReceipt | None:
        """The receipt of the caller's own request; None for anyone else's, or none at all."""
        with transaction(self._sessions) as session:
            row = session.get(Objection, str(receipt_id))
            if row is None or row.source != source.value:
                return None
            return _receipt(row)

    def received(self) -> ObjectionsReceived:
        """How many requests came, by kind and subject (operators)."""
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(Objection.kind, Objection.subject, func.count())
                .group_by(Objection.kind, Objection.subject)
                .order_by(Objection.kind, Objection.subject)
            ).all()
        counts = [
            ObjectionCount(kind=ObjectionKind(k), subject=ObjectionSubject(s), received=int(n))
            for k, s, n in rows
        ]
        return ObjectionsReceived(received=sum(c.received for c in counts), by_kind=counts)

    @staticmethod
    def _find(session: Session, source: SourceAgency, request_id: str) -> Objection | None:
        return session.scalars(
            select(Objection).where(
                Objection.source == source.value, Objection.request_id == request_id
            )
        ).first()
