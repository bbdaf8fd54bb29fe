"""Event bus: one interface (``api``), two backends (``kafka``, ``embedded``)."""

from services.runtime.bus.api import Bus, BusError, Consumer, Headers, Message, Producer, TopicSpec
from services.runtime.bus.factory import make_bus
from services.runtime.bus.records import partition_for_key

__all__ = [
    "Bus",
    "BusError",
    "Consumer",
    "Headers",
    "Message",
    "Producer",
    "TopicSpec",
    "make_bus",
    "partition_for_key",
]
