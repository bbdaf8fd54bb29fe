"""Builds the configured bus backend, so services depend on the port and not on an adapter."""

from __future__ import annotations

from typing import Any, Literal

from services.runtime.bus.api import Bus

__all__ = ["make_bus"]


def make_bus(
    backend: Literal["kafka", "embedded"],
    *,
    kafka_bootstrap: str | None = None,
    database_url: str | None = None,
    **kw: Any,
) -> Bus:
    """A bus on ``backend``; ``kw`` is passed to ``KafkaBus`` or ``EmbeddedBus`` as tuning."""
    if backend == "kafka":
        if not kafka_bootstrap:
            raise ValueError("the kafka backend needs kafka_bootstrap")
        from services.runtime.bus.kafka import KafkaBus

        return KafkaBus(kafka_bootstrap, **kw)
    if backend == "embedded":
        if not database_url:
            raise ValueError("the embedded backend needs database_url")
        from services.runtime.bus.embedded import EmbeddedBus

        return EmbeddedBus(database_url, **kw)
    raise ValueError(f"unknown bus backend {backend!r} (expected 'kafka' or 'embedded')")
