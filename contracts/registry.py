"""Event types: type string -> model, and pure upcasters bringing old payloads to the latest.

As in eventsourcing (``class_version``, ``upcast_v1_v2``): a breaking change to an event makes
a new version ``…v<N+1>`` and registers a function ``data_vN -> data_vN+1``; readers always
get the latest model, whatever version sits on the topic.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from contracts.events import ALL_EVENTS, Event
from contracts.naming import split_versioned_name

__all__ = [
    "EVENT_TYPES",
    "EventRegistry",
    "UnknownEventType",
    "UnsupportedEventVersion",
    "Upcaster",
    "model_for",
    "upcast",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""A pure function from version N's payload to version N+1's."""


class UnknownEventType(LookupError):
    """No model is registered for this event type."""


class UnsupportedEventVersion(LookupError):
    """The payload's version is newer than this reader, or no upcaster path reaches the latest."""


class EventRegistry:
    """Maps event families (``ingest.child-received``) to their latest model and upcasters."""

    def __init__(self, events: Iterable[type[Event]] = ()) -> None:
        self._models: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for event in events:
            self.register(event)

    def register(self, model: type[Event]) -> type[Event]:
        """Register ``model`` as the latest version of its family; usable as a class decorator."""
        family, _ = split_versioned_name(model.event_type)
        if family in self._models:
            raise ValueError(f"{family} is already registered as {self._models[family].event_type}")
        self._models[family] = model
        return model

    def register_upcaster(self, event_type: str, upcaster: Upcaster) -> None:
        """Register ``upcaster`` from ``event_type``'s version (e.g. ``x.y.v1``) to the next one."""
        family, version = split_versioned_name(event_type)
        latest = self._latest(family)
        if version >= latest:
            raise ValueError(f"{event_type} is not older than the registered v{latest}")
        if (family, version) in self._upcasters:
            raise ValueError(f"an upcaster from {event_type} is already registered")
        self._upcasters[(family, version)] = upcaster

    def upcaster(self, event_type: str) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of ``register_upcaster``."""

        def decorate(function: Upcaster) -> Upcaster:
            self.register_upcaster(event_type, function)
            return function

        return decorate

    def model_for(self, event_type: str) -> type[Event]:
        """The latest model of ``event_type``'s family (any version of the type string)."""
        return self._models[self._family(event_type)]

    @property
    def event_types(self) -> tuple[str, ...]:
        """The latest type string of every registered family, sorted."""
        return tuple(sorted(model.event_type for model in self._models.values()))

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` written at ``version`` of ``event_type``, brought to the latest version.

        Upcasters get a deep copy, so the caller's ``data`` is never changed.
        """
        family = self._family(event_type)
        suffix = event_type.rpartition(".v")[2]
        if event_type != family and int(suffix) != version:
            raise UnsupportedEventVersion(f"{event_type} does not match version {version}")
        latest = self._latest(family)
        if version > latest:
            raise UnsupportedEventVersion(
                f"{family}.v{version} is newer than this reader's v{latest}"
            )
        if version < 1:
            raise UnsupportedEventVersion(f"version {version} of {family} is not a version")
        out = copy.deepcopy(data)
        for step in range(version, latest):
            upcaster = self._upcasters.get((family, step))
            if upcaster is None:
                raise UnsupportedEventVersion(f"no upcaster from {family}.v{step}")
            out = upcaster(out)
        return out

    def parse(self, event_type: str, version: int, data: dict[str, Any]) -> Event:
        """The latest model of ``event_type`` from ``data`` at ``version``; extra fields ignored."""
        model = self.model_for(event_type)
        return model.model_validate(self.upcast(event_type, version, data), extra="ignore")

    def _family(self, event_type: str) -> str:
        family = event_type
        if ".v" in event_type and event_type.rpartition(".v")[2].isdigit():
            family, _ = split_versioned_name(event_type)
        if family not in self._models:
            raise UnknownEventType(f"no event type {event_type!r} is registered")
        return family

    def _latest(self, family: str) -> int:
        if family not in self._models:
            raise UnknownEventType(f"no event type {family!r} is registered")
        return split_versioned_name(self._models[family].event_type)[1]


EVENT_TYPES = EventRegistry(ALL_EVENTS)
"""fjo's event types. Upcasters for future versions register here, next to the new model."""


def upcast(
    event_type: str, version: int, data: dict[str, Any], registry: EventRegistry = EVENT_TYPES
) -> dict[str, Any]:
    """``data`` at ``version`` brought to the latest version (see ``EventRegistry.upcast``)."""
    return registry.upcast(event_type, version, data)


def model_for(event_type: str, registry: EventRegistry = EVENT_TYPES) -> type[Event]:
    """The latest model registered for ``event_type``'s family."""
    return registry.model_for(event_type)
