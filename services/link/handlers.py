"""One batch handler per event type: linkage keys in, link results out."""

from __future__ import annotations

import logging

from opentelemetry import context as otel_context
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkageKeysPublished
from services.link.claims import LostClaim
from services.link.rows import LinkRows, RowsChanged
from services.link.service import SPINE_TYPE, LinkService
from services.runtime.bus.api import Message, Producer
from services.runtime.delivery import Batch, BatchHandler, PoisonMessage, RetryBatch
from services.runtime.publishing import OutgoingMessage, publish_all

__all__ = ["make_handlers"]

log = logging.getLogger("fjo.link")


def _keys(message: Message) -> LinkageKeysPublished:
    try:
        event = parse_data(Envelope.from_bytes(message.value))
    except (ValidationError, ValueError) as exc:
        raise PoisonMessage(f"not a valid linkage-keys event ({type(exc).__name__})") from None
    if not isinstance(event, LinkageKeysPublished):
        raise PoisonMessage(f"unexpected event type {type(event).__name__}")
    return event


def make_handlers(service: LinkService, producer: Producer) -> dict[str, BatchHandler]:
    """Batch handlers keyed by event type; results go out through the worker's ``producer``.

    A run's rows are read up front and written back once (:class:`LinkRows`); each record
    is linked inside its own span. The run's partitions are fenced first (another replica
    may have claimed one), and results are published only once the run's writes went
    through: a run refused for either reason is tried again, its records blameless.
    """

    def handle_run(session: Session, batch: Batch) -> None:
        events = [_keys(message) for message in batch.messages]
        try:
            service.begin_run(session, {m.partition for m in batch.messages})
            rows = LinkRows(session)
            spine = [e.record_token for e in events if e.record_type.value == SPINE_TYPE]
            rows.prefetch(
                (e.record_token for e in events if e.record_type.value != SPINE_TYPE),
                spine=spine,
            )
            out: list[tuple[object, list[OutgoingMessage]]] = []
            for message, event in zip(batch.messages, events, strict=True):
                with batch.span(message):
                    results = service.on_linkage_keys(
                        session, event, rows, partition=message.partition
                    )
                    # Published after the writes below: keep the record's span for them.
                    out.append((otel_context.get_current(), results))
                log.debug("linkage keys handled", extra={"record_type": event.record_type.value})
            rows.flush()
        except LostClaim as exc:
            service.run_failed()
            service.lose({exc.partition})
            raise RetryBatch(str(exc)) from None
        except RowsChanged as exc:
            service.run_failed()
            raise RetryBatch(str(exc)) from None
        except Exception:
            service.run_failed()
            raise
        for ctx, results in out:
            token = otel_context.attach(ctx)  # type: ignore[arg-type]
            try:
                publish_all(producer, results)
            finally:
                otel_context.detach(token)

    return {LinkageKeysPublished.event_type: handle_run}
