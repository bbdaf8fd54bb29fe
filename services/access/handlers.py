"""Research-store batch handlers, one per event type, run inside the runtime Worker's
transaction.

Each parses the envelope into its contract model (a payload that fails its contract raises
``PoisonMessage``, which the Worker dead-letters at once) and applies it idempotently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TypeVar

from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events.link import LinkResultPublished, PersonObjected
from contracts.events.pseudonymise import PseudonymisedRecordPublished, RecordObjected
from services.access import objections
from services.access.domain.catalogue import CATALOGUE
from services.access.storage.audit_store import AuditTrail
from services.access.storage.research_store import (
    LinkResult,
    StoredRecord,
    apply_link_results,
    apply_records,
)
from services.runtime.bus.api import Message
from services.runtime.delivery import Batch, BatchHandler, PoisonMessage

__all__ = [
    "BATCH_HANDLERS",
    "batch_handlers",
    "dispatch_key",
    "handle_link_results",
    "handle_pseudonymised_records",
    "to_link_result",
    "to_stored_record",
]


_E = TypeVar("_E")


def _event(message: Message, expected: type) -> object:
    try:
        envelope = Envelope.from_bytes(message.value)
        event = parse_data(envelope)
    except ValueError as exc:  # pydantic's ValidationError included
        # It will never parse: dead-lettered at once, not retried. Only the exception type,
        # as pseudonymise and link do: a parse error's text can quote the payload.
        raise PoisonMessage(f"not a valid {expected.__name__} ({type(exc).__name__})") from None
    if not isinstance(event, expected):
        raise PoisonMessage(f"expected {expected.__name__}, got {envelope.type}")
    return event


def _event_date(record_type: str, content: Mapping[str, object]) -> date | None:
    dataset = CATALOGUE.get(record_type)
    if dataset is None or dataset.date_field is None:
        return None
    value = content.get(dataset.date_field)
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def to_stored_record(event: PseudonymisedRecordPublished) -> StoredRecord:
    """The research store's row for a pseudonymised record."""
    record_type = str(event.record_type.value)
    content = dict(event.content)
    return StoredRecord(
        record_token=event.record_token,
        record_type=record_type,
        source=str(event.source.value),
        record_version=event.record_version,
        key_version=event.key_version,
        week_of_birth=event.week_of_birth,
        sex=int(event.sex) if event.sex is not None else None,
        lsoa=event.lsoa,
        local_authority=event.local_authority,
        related_tokens=dict(event.related_tokens),
        event_date=_event_date(record_type, content),
        content=content,
        flags=tuple(str(f) for f in event.flags),
    )


def to_link_result(event: LinkResultPublished) -> LinkResult:
    return LinkResult(
        record_token=event.record_token,
        sequence=event.sequence,
        alf=event.alf,
        status_code=int(event.status),
        match_probability=event.match_probability,
        model_version=event.model_version,
        supersedes_sequence=event.supersedes_sequence,
        reason=str(event.reason.value),
    )


def _events(batch: Batch, expected: type[_E]) -> list[_E]:
    """Each record's event, parsed inside its span (a poison one fails the run)."""
    events = []
    for message in batch.messages:
        with batch.span(message):
            event = _event(message, expected)
            assert isinstance(event, expected)
            events.append(event)
    return events


def handle_pseudonymised_records(session: Session, batch: Batch) -> None:
    """pseudonymise.record-published → the research store's records (newer version wins);
    a record an objection took out stays out."""
    events = _events(batch, PseudonymisedRecordPublished)
    gone = objections.excluded_records(session, (e.record_token for e in events))
    apply_records(session, [to_stored_record(e) for e in events if e.record_token not in gone])


def handle_link_results(session: Session, batch: Batch) -> None:
    """link.result-published → each record's current link decision (higher sequence wins)."""
    events = _events(batch, LinkResultPublished)
    apply_link_results(session, [to_link_result(e) for e in events])


# Batch handlers: the Worker hands over runs of records (and one at a time after a failure).
BATCH_HANDLERS: dict[str, BatchHandler] = {
    PseudonymisedRecordPublished.event_type: handle_pseudonymised_records,
    LinkResultPublished.event_type: handle_link_results,
}
"""The handlers that need no audit trail (the research store's content and links)."""


def batch_handlers(audit: AuditTrail) -> dict[str, BatchHandler]:
    """Every handler of the worker: the research store's, and the objections', which
    append to the audit trail (``objections``)."""

    def link_results(session: Session, batch: Batch) -> None:
        results = [to_link_result(e) for e in _events(batch, LinkResultPublished)]
        apply_link_results(session, results)
        objections.on_link_results(session, audit, results)

    def record_objected(session: Session, batch: Batch) -> None:
        for event in _events(batch, RecordObjected):
            objections.on_record_objected(session, audit, event)

    def person_objected(session: Session, batch: Batch) -> None:
        for event in _events(batch, PersonObjected):
            objections.on_person_objected(session, audit, event)

    return {
        **BATCH_HANDLERS,
        LinkResultPublished.event_type: link_results,
        RecordObjected.event_type: record_objected,
        PersonObjected.event_type: person_objected,
    }


def dispatch_key(message: Message) -> str:
    """The event type: the ``fjo-type`` header, else the envelope's own ``type``."""
    raw = message.header("fjo-type")
    if raw is not None:
        return raw.decode("utf-8")
    try:
        return Envelope.from_bytes(message.value).type
    except ValueError as exc:
        raise PoisonMessage("not an event envelope") from exc
