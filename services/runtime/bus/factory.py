"""Builds the configured bus backend, so services depend on the port and not on an adapter."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from services.runtime.bus.api import Bus
from services.runtime.bus.security import KafkaSecurity

__all__ = ["BusConfig", "bus_from_settings", "make_bus"]


class BusConfig(Protocol):
    """What ``bus_from_settings`` reads: ``services.runtime.settings.BusSettings`` has it
    (described here rather than imported, as the settings import the bus package)."""

    @property
    def backend(self) -> Literal["kafka", "embedded"]: ...

    @property
    def kafka_bootstrap(self) -> str: ...

    @property
    def embedded_url(self) -> str: ...

    def kafka_security(self) -> KafkaSecurity: ...

    def embedded_identifiable(self) -> str | None:
        """The embedded log of the identifiable topics, for the services allowed them."""
        ...


def make_bus(
    backend: Literal["kafka", "embedded"],
    *,
    kafka_bootstrap: str | None = None,
    kafka_security: KafkaSecurity | None = None,
    database_url: str | None = None,
    identifiable_url: str | None = None,
    **kw: Any,
) -> Bus:
    """A bus on ``backend``; ``kw`` is passed to ``KafkaBus`` or ``EmbeddedBus`` as tuning.

    ``kafka_security`` (TLS, SASL) applies to every Kafka client the bus creates. On the
    embedded backend, identifiable topics live in the log at ``identifiable_url``; without one
    the bus refuses them (link and access are never given one).
    """
    if backend == "kafka":
        if not kafka_bootstrap:
            raise ValueError("the kafka backend needs kafka_bootstrap")
        from services.runtime.bus.kafka import KafkaBus

        return KafkaBus(kafka_bootstrap, security=kafka_security, **kw)
    if backend == "embedded":
        if not database_url:
            raise ValueError("the embedded backend needs database_url")
        from services.runtime.bus.embedded import EmbeddedBus

        shared = EmbeddedBus(database_url, **kw)
        if identifiable_url is None:
            return shared
        from services.runtime.bus.separated import SeparatedBus

        return SeparatedBus(shared, EmbeddedBus(identifiable_url, identifiable=True, **kw))
    raise ValueError(f"unknown bus backend {backend!r} (expected 'kafka' or 'embedded')")


def bus_from_settings(settings: BusConfig, **kw: Any) -> Bus:
    """The configured bus backend, with the Kafka security settings (``kw``: tuning)."""
    return make_bus(
        settings.backend,
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_security=settings.kafka_security(),
        database_url=settings.embedded_url,
        identifiable_url=settings.embedded_identifiable(),
        **kw,
    )
