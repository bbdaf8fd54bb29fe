"""One batch handler per event type: linkage keys (and objections) in, link results out."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkageKeysPublished, RecordObjected
from services.link.claims import LostClaim
from services.link.rows import LinkRows, RowsChanged
from services.link.service import SPINE_TYPE, LinkService
from services.runtime.bus.api import Message, Producer
from services.runtime.delivery import Batch, BatchHandler, PoisonMessage, RetryBatch
from services.runtime.publishing import publish_all

__all__ = ["make_handlers"]

log = logging.getLogger("fjo.link")


def _keys(message: Message) -> LinkageKeysPublished | RecordObjected:
    try:
        event = parse_data(Envelope.from_bytes(message.value))
    except (ValidationError, ValueError) as exc:
        raise PoisonMessage(f"not a valid linkage-keys event ({type(exc).__name__})") from None
    if not isinstance(event, LinkageKeysPublished | RecordObjected):
        raise PoisonMessage(f"unexpected event type {type(event).__name__}")
    return event


def make_handlers(service: LinkService, producer: Producer) -> dict[str, BatchHandler]:
    """Batch handlers keyed by event type; results go out through the worker's ``producer``.

    A run's rows are read up front and written back once (:class:`LinkRows`); each record
    is linked, and its results published, inside its own span. The run's partitions are
    fenced first (``begin_run``): from there to the commit no other writer can touch their
    results (every writer of a partition's records holds its claim row, the review API too),
    so the results published before the writes are flushed are the ones that commit. A run
    refused (another replica claimed a partition, a fenced row changed after all) is tried
    again, its records blameless.
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
            for message, event in zip(batch.messages, events, strict=True):
                with batch.span(message):
                    out = (
                        service.on_record_objected(session, event, rows)
                        if isinstance(event, RecordObjected)
                        else service.on_linkage_keys(
                            session, event, rows, partition=message.partition
                        )
                    )
                    sent = publish_all(producer, out)
                log.debug(
                    "linkage keys handled",
                    extra={"record_type": event.record_type.value, "results": sent},
                )
            rows.flush()
        except LostClaim as exc:
            service.run_failed()
            service.lose({exc.partition})
            raise RetryBatch(str(exc)) from None
        except RowsChanged as exc:
            # Should not happen (see above); if it does, results of this run may already be
            # on the bus: the retry re-publishes what commits.
            log.error("link results changed under a fenced run", extra={"error": str(exc)})
            service.run_failed()
            raise RetryBatch(str(exc)) from None
        except Exception:
            service.run_failed()
            raise

    return {LinkageKeysPublished.event_type: handle_run, RecordObjected.event_type: handle_run}
