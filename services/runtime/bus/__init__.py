"""Event bus: one interface (``api``), two backends (``kafka``, ``embedded``)."""

from services.runtime.bus.api import Bus, BusError, Consumer, Headers, Message, Producer, TopicSpec

__all__ = ["Bus", "BusError", "Consumer", "Headers", "Message", "Producer", "TopicSpec"]
