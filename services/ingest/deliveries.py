"""The delivery handler: validate, de-duplicate, publish, account, so every count reconciles.

One delivery runs as a sequence of batches. Each batch is one database transaction that
claims the batch's new record keys, publishes the accepted records and the quarantined
lines, waits for the bus to acknowledge them (``flush``), then adds the batch's counts
and commits. A record is therefore marked accepted only once the bus has it, and a batch
the bus refused leaves no trace in the index, so re-sending the delivery repairs it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from contracts.records import RecordType, SourceAgency
from services.ingest import events
from services.ingest.domain.parsing import Candidate, DeliveryFormat
from services.ingest.domain.validation import Accepted, Rejected, validate_candidate
from services.ingest.producers import ProducerPool
from services.ingest.schemas import (
    DeliveryPage,
    DeliverySummary,
    QuarantineReason,
    QuarantineSource,
    QuarantineSummary,
    Receipt,
    RecordError,
)
from services.ingest.storage import repository as repo
from services.ingest.storage.models import Delivery, DeliveryError
from services.runtime.bus.api import BusError, Producer
from services.runtime.db import transaction

__all__ = [
    "DeliveryFailed",
    "DeliveryInProgress",
    "DeliveryService",
    "IdempotencyKeyReused",
    "Outcome",
]

log = logging.getLogger("fjo.ingest")


class DeliveryInProgress(Exception):
    """Another request is processing a delivery with the same Idempotency-Key."""


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was first used for different content."""


class DeliveryFailed(Exception):
    """Processing stopped (bus or database unavailable); re-send with the same key."""

    def __init__(self, delivery_id: str, reason: str) -> None:
        super().__init__(reason)
        self.delivery_id = delivery_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """The receipt of a delivery, and whether it is an earlier delivery's (a replay)."""

    receipt: Receipt
    replayed: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything ingest writes is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class _Run:
    delivery_id: str
    source: SourceAgency
    record_type: RecordType
    errors_stored: int = 0


class DeliveryService:
    """Runs deliveries and answers for their receipts; one instance per process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        producers: ProducerPool,
        *,
        batch_size: int = 1000,
        max_receipt_errors: int = 1000,
        stale_after_s: float = 600.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._producers = producers
        self._batch_size = batch_size
        self._max_errors = max_receipt_errors
        self._stale_after = timedelta(seconds=stale_after_s)
        self._clock = clock

    # ------------------------------------------------------------------ idempotency

    def replay_for(
        self,
        *,
        source: SourceAgency,
        record_type: RecordType,
        idempotency_key: str | None,
        content_sha256: str | None,
    ) -> Outcome | None:
        """The earlier receipt this request repeats, known before reading the body, or None.

        Raises ``DeliveryInProgress`` when the key's delivery is still being processed.
        """
        with transaction(self._sessions) as session:
            if idempotency_key is not None:
                existing = repo.find_by_idempotency_key(session, source.value, idempotency_key)
                if existing is not None:
                    if existing.record_type != record_type.value or (
                        content_sha256 is not None and existing.content_sha256 != content_sha256
                    ):
                        raise IdempotencyKeyReused(idempotency_key)
                    if existing.status == "complete":
                        return Outcome(self._receipt(session, existing), replayed=True)
                    if existing.status == "processing" and not self._stale(existing):
                        raise DeliveryInProgress(existing.id)
                    return None
            if content_sha256 is not None:
                found = repo.find_by_content(
                    session, source.value, record_type.value, content_sha256
                )
                if found is not None:
                    return Outcome(self._receipt(session, found), replayed=True)
        return None

    def _stale(self, delivery: Delivery) -> bool:
        return self._clock() - _aware(delivery.updated_at) > self._stale_after

    # ------------------------------------------------------------------ processing

    def run(
        self,
        *,
        source: SourceAgency,
        record_type: RecordType,
        fmt: DeliveryFormat,
        idempotency_key: str | None,
        content_sha256: str,
        body_bytes: int,
        candidates: Iterable[Candidate],
    ) -> Outcome:
        """Process a whole delivery (or return the receipt it repeats)."""
        stream = iter(candidates)
        # Reading the first candidate surfaces whole-delivery format errors (a CSV header)
        # before a delivery is recorded.
        first = list(islice(stream, 1))
        with self._producers.lend(keep_on=(IdempotencyKeyReused, DeliveryInProgress)) as producer:
            begun = self._begin(
                source, record_type, fmt, idempotency_key, content_sha256, body_bytes
            )
            if isinstance(begun, Outcome):
                return begun
            return self._process(_Run(begun, source, record_type), _chain(first, stream), producer)

    def _process(self, run: _Run, candidates: Iterator[Candidate], producer: Producer) -> Outcome:
        try:
            while batch := list(islice(candidates, self._batch_size)):
                self._process_batch(run, batch, producer)
        except (BusError, SQLAlchemyError) as exc:
            reason = "bus unavailable" if isinstance(exc, BusError) else "database unavailable"
            self._fail(run.delivery_id, reason)
            log.warning(
                "delivery failed",
                extra={
                    "delivery_id": run.delivery_id,
                    "reason": reason,
                    "error_type": type(exc).__name__,
                },
            )
            raise DeliveryFailed(run.delivery_id, reason) from exc
        except BaseException:
            self._fail(run.delivery_id, "processing interrupted")
            raise
        return Outcome(self._complete(run.delivery_id), replayed=False)

    def _begin(
        self,
        source: SourceAgency,
        record_type: RecordType,
        fmt: DeliveryFormat,
        idempotency_key: str | None,
        content_sha256: str,
        body_bytes: int,
    ) -> str | Outcome:
        now = self._clock()
        try:
            with transaction(self._sessions) as session:
                if idempotency_key is not None:
                    existing = repo.find_by_idempotency_key(session, source.value, idempotency_key)
                    if existing is not None:
                        if (
                            existing.content_sha256 != content_sha256
                            or existing.record_type != record_type.value
                        ):
                            raise IdempotencyKeyReused(idempotency_key)
                        if existing.status == "complete":
                            return Outcome(self._receipt(session, existing), replayed=True)
                        if existing.status == "processing" and not self._stale(existing):
                            raise DeliveryInProgress(existing.id)
                        # A failed or abandoned attempt: process again under the same id.
                        repo.clear_errors(session, existing.id)
                        _reset(existing, now)
                        log.info("delivery retried", extra={"delivery_id": existing.id})
                        return existing.id
                found = repo.find_by_content(
                    session, source.value, record_type.value, content_sha256
                )
                if found is not None:
                    return Outcome(self._receipt(session, found), replayed=True)
                delivery = Delivery(
                    id=str(uuid.uuid4()),
                    source=source.value,
                    record_type=record_type.value,
                    format=fmt.value,
                    idempotency_key=idempotency_key,
                    content_sha256=content_sha256,
                    body_bytes=body_bytes,
                    created_at=now,
                )
                _reset(delivery, now)
                session.add(delivery)
                session.flush()
                log.info(
                    "delivery started",
                    extra={
                        "delivery_id": delivery.id,
                        "source": source.value,
                        "record_type": record_type.value,
                        "format": fmt.value,
                    },
                )
                return delivery.id
        except IntegrityError as exc:
            # A concurrent request inserted the same Idempotency-Key first.
            raise DeliveryInProgress(idempotency_key or "") from exc

    def _process_batch(self, run: _Run, batch: list[Candidate], producer: Producer) -> None:
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        for candidate in batch:
            result = validate_candidate(candidate, run.record_type, run.source)
            if isinstance(result, Accepted):
                accepted.append(result)
            else:
                rejected.append(result)
        first_of: dict[repo.ClaimKey, Accepted] = {}
        for item in accepted:
            first_of.setdefault((item.record.record_id, item.record.record_version), item)
        duplicates = len(accepted) - len(first_of)
        now = self._clock()
        with transaction(self._sessions) as session:
            claimed = repo.claim_records(
                session,
                source=run.source.value,
                record_type=run.record_type.value,
                delivery_id=run.delivery_id,
                rows=[(rid, ver, item.line) for (rid, ver), item in first_of.items()],
                now=now,
            )
            unclaimed = [key for key in first_of if key not in claimed]
            # Accepted by an earlier attempt of this same delivery (same line): already on
            # the bus, so counted as accepted again, and not published twice.
            earlier = (
                repo.holders_of(
                    session,
                    source=run.source.value,
                    record_type=run.record_type.value,
                    keys=unclaimed,
                )
                if unclaimed
                else {}
            )
            again = {
                key
                for key in unclaimed
                if earlier.get(key) == (run.delivery_id, first_of[key].line)
            }
            for key, first in first_of.items():
                if key in claimed:
                    _send(producer, events.received(first, delivery_id=run.delivery_id))
            for refused in rejected:
                _send(
                    producer,
                    events.quarantined(
                        refused,
                        delivery_id=run.delivery_id,
                        source=run.source,
                        record_type=run.record_type,
                    ),
                )
            producer.flush()
            errors_omitted = self._store_errors(session, run, rejected)
            session.execute(
                update(Delivery)
                .where(Delivery.id == run.delivery_id)
                .values(
                    received=Delivery.received + len(batch),
                    accepted=Delivery.accepted + len(claimed) + len(again),
                    rejected=Delivery.rejected + len(rejected),
                    duplicates=Delivery.duplicates + duplicates + len(unclaimed) - len(again),
                    errors_omitted=Delivery.errors_omitted + errors_omitted,
                    updated_at=now,
                )
            )

    def _store_errors(self, session: Session, run: _Run, rejected: list[Rejected]) -> int:
        omitted = 0
        rows: list[DeliveryError] = []
        for item in rejected:
            for error in item.errors:
                if run.errors_stored < self._max_errors:
                    run.errors_stored += 1
                    rows.append(
                        DeliveryError(
                            delivery_id=run.delivery_id,
                            line=item.line,
                            path=error.path[:512],
                            message=error.message[:1000],
                            type=error.type[:100],
                        )
                    )
                else:
                    omitted += 1
        session.add_all(rows)
        return omitted

    def _complete(self, delivery_id: str) -> Receipt:
        now = self._clock()
        with transaction(self._sessions) as session:
            delivery = session.get_one(Delivery, delivery_id)
            delivery.status = "complete"
            delivery.completed_at = now
            delivery.updated_at = now
            session.flush()
            receipt = self._receipt(session, delivery)
        log.info(
            "delivery complete",
            extra={
                "delivery_id": delivery_id,
                "received": receipt.received,
                "accepted": receipt.accepted,
                "rejected": receipt.rejected,
                "duplicates": receipt.duplicates,
            },
        )
        return receipt

    def _fail(self, delivery_id: str, reason: str) -> None:
        try:
            with transaction(self._sessions) as session:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id == delivery_id)
                    .values(status="failed", failure=reason, updated_at=self._clock())
                )
        except SQLAlchemyError:
            # The row stays "processing" and turns stale; a retry with the key then proceeds.
            log.warning("could not mark delivery failed", extra={"delivery_id": delivery_id})

    # ------------------------------------------------------------------ reading

    def receipt(self, delivery_id: str, source: SourceAgency) -> Receipt | None:
        """The receipt of the caller's own delivery; None for anyone else's, or none at all."""
        with transaction(self._sessions) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.source != source.value:
                return None
            return self._receipt(session, delivery)

    def page(self, source: SourceAgency, *, limit: int, cursor: str | None) -> DeliveryPage:
        """One page of the caller's deliveries, newest first."""
        after = repo.decode_cursor(cursor) if cursor else None
        with transaction(self._sessions) as session:
            rows = repo.list_deliveries(session, source.value, limit=limit + 1, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        return DeliveryPage(
            items=[_summary(row) for row in rows],
            next_cursor=repo.encode_cursor(rows[-1]) if more and rows else None,
        )

    def quarantine(self) -> QuarantineSummary:
        """What has been quarantined, by partner and record type, and the errors why."""
        with transaction(self._sessions) as session:
            counts = repo.quarantine_counts(session)
            reasons = repo.quarantine_reasons(session)
        return QuarantineSummary(
            rejected=sum(int(row[3] or 0) for row in counts),
            errors_not_itemised=sum(int(row[4] or 0) for row in counts),
            sources=[
                QuarantineSource(
                    source=source, record_type=kind, deliveries=int(n), rejected=int(rejected)
                )
                for source, kind, n, rejected, _ in counts
            ],
            reasons=[
                QuarantineReason(
                    source=source, record_type=kind, type=type_, path=path, errors=int(n)
                )
                for source, kind, type_, path, n in reasons
            ],
        )

    def _receipt(self, session: Session, delivery: Delivery) -> Receipt:
        errors = session.scalars(
            select(DeliveryError)
            .where(DeliveryError.delivery_id == delivery.id)
            .order_by(DeliveryError.line, DeliveryError.id)
        )
        return Receipt(
            **_summary(delivery).model_dump(),
            errors=[
                RecordError(line=e.line, path=e.path, message=e.message, type=e.type)
                for e in errors
            ],
            errors_omitted=delivery.errors_omitted,
        )


def _summary(delivery: Delivery) -> DeliverySummary:
    return DeliverySummary(
        delivery_id=delivery.id,
        status=delivery.status,
        source=delivery.source,
        record_type=delivery.record_type,
        format=delivery.format,
        received=delivery.received,
        accepted=delivery.accepted,
        rejected=delivery.rejected,
        duplicates=delivery.duplicates,
        content_sha256=delivery.content_sha256,
        body_bytes=delivery.body_bytes,
        created_at=_aware(delivery.created_at),
        completed_at=_aware(delivery.completed_at) if delivery.completed_at else None,
        failure=delivery.failure,
    )


def _reset(delivery: Delivery, now: datetime) -> None:
    delivery.status = "processing"
    delivery.received = delivery.accepted = delivery.rejected = delivery.duplicates = 0
    delivery.errors_omitted = 0
    delivery.failure = None
    delivery.completed_at = None
    delivery.updated_at = now


def _send(producer: Producer, message: events.OutgoingMessage) -> None:
    producer.publish(message.topic, message.value, key=message.key, headers=message.headers)


def _chain(first: list[Candidate], rest: Iterator[Candidate]) -> Iterator[Candidate]:
    yield from first
    yield from rest
