"""One batch handler per received-record event: split each record, publish its two halves
(a record in the erasure register is suppressed instead); and one for objections: shred
what the vault keeps of the record, register it, publish the objection."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import RECORD_RECEIVED_EVENTS, ObjectionReceived, RecordReceived
from contracts.records import PERSON_RECORD_TYPES
from services.pseudonymise.domain import Pseudonymiser
from services.pseudonymise.erasures import REGISTERED_KINDS, register, suppression_reasons
from services.pseudonymise.events import objection_messages, split_to_messages
from services.pseudonymise.roles import roles_for
from services.pseudonymise.vault import Vault, identifier_fields
from services.runtime.bus.api import Message, Producer
from services.runtime.delivery import Batch, BatchHandler, PoisonMessage
from services.runtime.publishing import OutgoingMessage, publish_all

__all__ = ["make_handlers", "object_to", "pseudonymise"]

log = logging.getLogger("fjo.pseudonymise")


def _event(message: Message) -> tuple[Envelope, object]:
    try:
        envelope = Envelope.from_bytes(message.value)
        event = parse_data(envelope)
    except (ValidationError, ValueError) as exc:
        # Only the exception type: the text of a parse error can quote an identifier.
        raise PoisonMessage(f"not a valid record event ({type(exc).__name__})") from None
    return envelope, event


def _received(message: Message) -> tuple[Envelope, RecordReceived]:
    envelope, event = _event(message)
    if not isinstance(event, RecordReceived):
        raise PoisonMessage(f"unexpected event type {envelope.type}")
    return envelope, event


def _objection(message: Message) -> tuple[Envelope, ObjectionReceived]:
    envelope, event = _event(message)
    if not isinstance(event, ObjectionReceived):
        raise PoisonMessage(f"unexpected event type {envelope.type}")
    return envelope, event


def object_to(
    session: Session,
    pseudonymiser: Pseudonymiser,
    event: ObjectionReceived,
    input_event_id: uuid.UUID,
) -> list[OutgoingMessage]:
    """What an objection becomes: the record's token made exactly as for the record, what
    the vault keeps of it shredded (every version: of a spine person, their whole history)
    and the token put in the erasure register, so that a re-sent record stays out, unless it
    is an opt-out; and the objection published under that token. Idempotent: a replay
    erases and registers nothing more and publishes the same events."""
    request = event.request
    token = pseudonymiser.record_token(
        request.source.value, request.record_type.value, request.record_id
    )
    erased = 0
    if request.kind in REGISTERED_KINDS:
        erased = Vault.erase(session, token, reason=f"{request.kind.value}:{event.receipt_id}")
        register(
            session,
            record_token=token,
            receipt_id=event.receipt_id,
            kind=request.kind,
            record_type=request.record_type.value,
            source=request.source.value,
        )
    return objection_messages(
        event, record_token=token, erased_versions=erased, input_event_id=input_event_id
    )


def pseudonymise(
    pseudonymiser: Pseudonymiser,
    event: RecordReceived,
    input_event_id: uuid.UUID,
    vault: Vault | None = None,
    kept: list[dict[str, Any]] | None = None,
) -> list[OutgoingMessage]:
    """The messages one received record becomes: its content and, for a person, its keys.

    With ``vault``, a person record's identifier fields are sealed into a row appended to
    ``kept`` (the caller inserts them in its transaction)."""
    record = event.record
    fields = record.model_dump(mode="json")
    roles = roles_for(record.record_type)
    split = pseudonymiser.split(
        fields, source=record.source.value, record_kind=record.record_type.value, roles=roles
    )
    if vault is not None and kept is not None and record.record_type in PERSON_RECORD_TYPES:
        kept.append(
            vault.row(
                record_token=split.record_token,
                record_version=record.record_version,
                record_type=record.record_type.value,
                source=record.source.value,
                input_event_id=input_event_id,
                delivery_id=event.delivery_id,
                fields=identifier_fields(fields, roles)[0],
            )
        )
    return split_to_messages(event, split, input_event_id=input_event_id)


def make_handlers(
    pseudonymiser: Pseudonymiser, producer: Producer, vault: Vault
) -> dict[str, BatchHandler]:
    """Batch handlers keyed by event type; outputs go through ``producer`` (the worker's own).

    A run's only writes are its person records' vault rows, inserted together at its end
    (a failed run is rolled back and its records go again one at a time, so no savepoint
    per record is needed); each record is split and published inside its own span. One
    query first finds the run's records in the erasure register: those are suppressed
    (reason ``erased`` or ``objected``), neither vaulted nor published.
    """

    def handle_run(session: Session, batch: Batch) -> None:
        received = [_received(message) for message in batch.messages]
        tokens = [_token_of(event) for _envelope, event in received]
        suppressed = suppression_reasons(session, tokens)
        kept: list[dict[str, Any]] = []
        for message, (envelope, event), token in zip(batch.messages, received, tokens, strict=True):
            with batch.span(message):
                reason = suppressed.get(token)
                if reason is not None:
                    batch.suppress(message, reason)
                    log.info(
                        "record suppressed",
                        extra={"record_type": event.record.record_type.value, "reason": reason},
                    )
                    continue
                handle(envelope, event, kept)
        Vault.keep(session, kept)

    def _token_of(event: RecordReceived) -> str:
        record = event.record
        return pseudonymiser.record_token(
            record.source.value, record.record_type.value, record.record_id
        )

    def handle(envelope: Envelope, event: RecordReceived, kept: list[dict[str, Any]]) -> None:
        messages = pseudonymise(pseudonymiser, event, envelope.event_id, vault, kept)
        sent = publish_all(producer, messages)
        log.debug(
            "record split",
            extra={"record_type": event.record.record_type.value, "messages": sent},
        )

    def handle_objections(session: Session, batch: Batch) -> None:
        for message in batch.messages:
            with batch.span(message):
                envelope, event = _objection(message)
                sent = publish_all(
                    producer, object_to(session, pseudonymiser, event, envelope.event_id)
                )
            log.info(
                "objection passed on",
                extra={"receipt_id": str(event.receipt_id), "messages": sent},
            )

    handlers: dict[str, BatchHandler] = {
        event.event_type: handle_run for event in RECORD_RECEIVED_EVENTS.values()
    }
    handlers[ObjectionReceived.event_type] = handle_objections
    return handlers
