"""One batch handler per received-record event: split each record, publish its two halves."""

from __future__ import annotations

import logging
import uuid

from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import RECORD_RECEIVED_EVENTS, RecordReceived
from services.pseudonymise.domain import Pseudonymiser
from services.pseudonymise.events import split_to_messages
from services.pseudonymise.roles import roles_for
from services.runtime.bus.api import Message, Producer
from services.runtime.delivery import Batch, BatchHandler, PoisonMessage
from services.runtime.publishing import OutgoingMessage, publish_all

__all__ = ["make_handlers", "pseudonymise"]

log = logging.getLogger("fjo.pseudonymise")


def _received(message: Message) -> tuple[Envelope, RecordReceived]:
    try:
        envelope = Envelope.from_bytes(message.value)
        event = parse_data(envelope)
    except (ValidationError, ValueError) as exc:
        # Only the exception type: the text of a parse error can quote an identifier.
        raise PoisonMessage(f"not a valid record event ({type(exc).__name__})") from None
    if not isinstance(event, RecordReceived):
        raise PoisonMessage(f"unexpected event type {envelope.type}")
    return envelope, event


def pseudonymise(
    pseudonymiser: Pseudonymiser, event: RecordReceived, input_event_id: uuid.UUID
) -> list[OutgoingMessage]:
    """The messages one received record becomes: its content and, for a person, its keys."""
    record = event.record
    split = pseudonymiser.split(
        record.model_dump(mode="json"),
        source=record.source.value,
        record_kind=record.record_type.value,
        roles=roles_for(record.record_type),
    )
    return split_to_messages(event, split, input_event_id=input_event_id)


def make_handlers(pseudonymiser: Pseudonymiser, producer: Producer) -> dict[str, BatchHandler]:
    """Batch handlers keyed by event type; outputs go through ``producer`` (the worker's own).

    The split writes nothing to the database, so a run needs no savepoint per record (the
    Worker's per-record savepoints cost two round trips each); each record is still split
    and published inside its own span.
    """

    def handle_run(_session: Session, batch: Batch) -> None:
        for message in batch.messages:
            with batch.span(message):
                handle(message)

    def handle(message: Message) -> None:
        envelope, event = _received(message)
        sent = publish_all(producer, pseudonymise(pseudonymiser, event, envelope.event_id))
        log.debug(
            "record split",
            extra={"record_type": event.record.record_type.value, "messages": sent},
        )

    return {event.event_type: handle_run for event in RECORD_RECEIVED_EVENTS.values()}
