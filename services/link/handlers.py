"""One handler per event type: linkage keys in, link results out."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkageKeysPublished
from services.link.service import LinkService
from services.runtime.bus.api import Message, Producer
from services.runtime.delivery import Handler, PoisonMessage
from services.runtime.publishing import publish_all

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


def make_handlers(service: LinkService, producer: Producer) -> dict[str, Handler]:
    """Handlers keyed by event type; results go out through the worker's ``producer``."""

    def handle(session: Session, message: Message) -> None:
        event = _keys(message)
        sent = publish_all(producer, service.on_linkage_keys(session, event))
        log.debug(
            "linkage keys handled", extra={"record_type": event.record_type.value, "results": sent}
        )

    return {LinkageKeysPublished.event_type: handle}
