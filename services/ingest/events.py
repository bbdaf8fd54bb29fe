"""Ingest's outgoing events: a received record or a quarantined line, framed for the bus."""

from __future__ import annotations

import uuid

from contracts.events import (
    RECORD_RECEIVED_EVENTS,
    ObjectionReceived,
    RecordQuarantined,
    RecordReceived,
)
from contracts.records import RecordType, SourceAgency
from contracts.services import Service
from contracts.topics import INGEST_QUARANTINE, INGEST_RECORDS
from services.ingest.domain.validation import Accepted, Rejected
from services.runtime.publishing import OutgoingMessage, derived_event_id, frame

__all__ = [
    "QUARANTINE_TOPIC",
    "RECORDS_TOPIC",
    "OutgoingMessage",
    "objection_received",
    "quarantined",
    "received",
]

RECORDS_TOPIC = INGEST_RECORDS.name
QUARANTINE_TOPIC = INGEST_QUARANTINE.name


def received(accepted: Accepted, *, delivery_id: str) -> OutgoingMessage:
    """The records-topic message for a record that passed its contract."""
    event_cls = RECORD_RECEIVED_EVENTS[accepted.record.record_type]
    event = event_cls(record=accepted.record, delivery_id=delivery_id, line_number=accepted.line)
    return _frame(RECORDS_TOPIC, event, delivery_id, accepted.line)


def quarantined(
    rejected: Rejected, *, delivery_id: str, source: SourceAgency, record_type: RecordType
) -> OutgoingMessage:
    """The quarantine-topic message for a line that failed, with its reasons."""
    event = RecordQuarantined(
        delivery_id=delivery_id,
        source=source,
        record_type=record_type,
        line_number=rejected.line,
        original_line=rejected.raw,
        errors=rejected.errors,
    )
    return _frame(QUARANTINE_TOPIC, event, delivery_id, rejected.line)


# Event ids are derived from (delivery, line, topic), never from a record's content: a retry
# of the same delivery re-publishes the same ids (consumers de-duplicate on them) and the id
# is not a hash of an identifier.
_EVENT_ID_NAMESPACE = uuid.UUID("0b6d3f2e-6a55-4c1e-9b2a-3f1e1c1d2a01")


def _frame(
    topic: str, event: RecordReceived | RecordQuarantined, delivery_id: str, line: int
) -> OutgoingMessage:
    return frame(
        event,
        source=Service.INGEST,
        topic=topic,
        delivery_id=delivery_id,
        event_id=derived_event_id(_EVENT_ID_NAMESPACE, delivery_id, line, topic),
    )


def objection_received(event: ObjectionReceived) -> OutgoingMessage:
    """The records-topic message of an objection, under the key of the record it is about
    (its id derives from the receipt id: a retried publish is the same event)."""
    return frame(
        event,
        source=Service.INGEST,
        topic=RECORDS_TOPIC,
        event_id=derived_event_id(_EVENT_ID_NAMESPACE, "objection", str(event.receipt_id)),
    )
