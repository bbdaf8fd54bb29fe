"""Events framed for the bus: envelope, partition key and the headers the worker runtime reads.

Every producer frames the same way: the ``fjo-type`` header lets a worker dispatch without
parsing, and the ``fjo-event-id`` header is what consumers de-duplicate on. Producers derive
event ids deterministically from their input (never from an identifier), so a retried
handler re-publishes the same ids and downstream effects stay exactly-once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry import trace

from contracts.envelope import Envelope
from contracts.events import Event
from contracts.services import Service
from contracts.topics import topic_for_event
from services.runtime.bus.api import Headers, Producer
from services.runtime.delivery import EVENT_ID_HEADER, TYPE_HEADER

__all__ = ["OutgoingMessage", "derived_event_id", "frame", "publish_all"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One bus record: topic, key, value and headers."""

    topic: str
    key: str
    value: bytes
    headers: Headers = ()


def derived_event_id(namespace: uuid.UUID, *parts: object) -> uuid.UUID:
    """A stable event id from what caused the event (ids of inputs, never identifiers)."""
    return uuid.uuid5(namespace, ":".join(str(p) for p in parts))


def frame(
    event: Event,
    *,
    source: Service,
    event_id: uuid.UUID,
    topic: str | None = None,
    delivery_id: str | None = None,
    correlation_id: str | None = None,
) -> OutgoingMessage:
    """The bus record for ``event`` on its registry topic (or ``topic``)."""
    ctx = trace.get_current_span().get_span_context()
    envelope = Envelope.wrap(
        event,
        source=source,
        event_id=event_id,
        delivery_id=delivery_id,
        correlation_id=correlation_id,
        trace_id=format(ctx.trace_id, "032x") if ctx.is_valid else None,
    )
    headers = (
        (TYPE_HEADER, event.event_type.encode()),
        (EVENT_ID_HEADER, str(envelope.event_id).encode()),
    )
    return OutgoingMessage(
        topic or topic_for_event(type(event)).name,
        envelope.partition_key,
        envelope.to_bytes(),
        headers,
    )


def publish_all(producer: Producer, messages: Iterable[OutgoingMessage]) -> int:
    """Hand every message to ``producer`` (buffered; the caller flushes). Returns the count."""
    count = 0
    for message in messages:
        producer.publish(message.topic, message.value, key=message.key, headers=message.headers)
        count += 1
    return count
