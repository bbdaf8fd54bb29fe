"""Backends for the bus contract suite: every test runs on each of them.

* ``embedded-sqlite``: the embedded log on a fresh SQLite file (no services needed);
* ``embedded-postgres``: the embedded log on PostgreSQL (one database per session, unique
  topic and group names per test);
* ``kafka``: the real broker.

``kafka_bootstrap``, ``postgres_url`` and ``fresh_postgres_db`` come from tests/conftest.py
(fail under CI=true when a service is missing, skip otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime.bus.api import Bus, TopicSpec
from tests._services import create_database, drop_database
from tests.contract.bus._support import BusSpec, unique

# Short sessions so that a killed member's partitions move on within seconds.
EMBEDDED_TUNING: dict[str, Any] = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 500,
    "poll_interval_ms": 20,
}
KAFKA_TUNING: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 2000,
    "linger_ms": 2,
}

ALL_BACKENDS = [
    pytest.param("embedded-sqlite", id="embedded-sqlite"),
    pytest.param("embedded-postgres", id="embedded-postgres", marks=pytest.mark.postgres),
    pytest.param("kafka", id="kafka", marks=pytest.mark.kafka),
]
EMBEDDED_BACKENDS = ALL_BACKENDS[:2]


@pytest.fixture(scope="session")
def bus_postgres_url(postgres_url: str) -> Iterator[str]:
    """One PostgreSQL database for the embedded bus, shared by the session's tests."""
    url = create_database(postgres_url, prefix="fjo_bus_contract")
    yield url
    drop_database(postgres_url, url)


def _spec(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> BusSpec:
    if backend == "embedded-sqlite":
        url = f"sqlite+pysqlite:///{tmp_path / 'bus.db'}"
        return BusSpec("embedded", {"database_url": url, **EMBEDDED_TUNING}, backend)
    if backend == "embedded-postgres":
        url = request.getfixturevalue("bus_postgres_url")
        return BusSpec("embedded", {"database_url": url, **EMBEDDED_TUNING}, backend)
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return BusSpec("kafka", {"kafka_bootstrap": bootstrap, **KAFKA_TUNING}, backend)


@pytest.fixture(params=ALL_BACKENDS)
def bus_spec(request: pytest.FixtureRequest, tmp_path: Path) -> BusSpec:
    """How to build the bus under test (also handed to subprocesses)."""
    return _spec(request, request.param, tmp_path)


@pytest.fixture(params=EMBEDDED_BACKENDS)
def embedded_spec(request: pytest.FixtureRequest, tmp_path: Path) -> BusSpec:
    """The embedded backend only, on SQLite and PostgreSQL."""
    return _spec(request, request.param, tmp_path)


class Closable(Protocol):
    def close(self) -> None: ...


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register producers/consumers/buses to be closed after the test, newest first."""
    items: list[Closable] = []

    def register(item: Any) -> Any:
        items.append(item)
        return item

    yield register
    for item in reversed(items):
        item.close()


@pytest.fixture
def bus(bus_spec: BusSpec) -> Iterator[Bus]:
    """The bus under test."""
    b = bus_spec.make()
    yield b
    b.close()


@pytest.fixture
def new_topic(bus: Bus) -> Callable[..., str]:
    """Factory: a new, uniquely named topic on the bus under test."""

    def make(partitions: int = 3, prefix: str = "contract", **configs: str) -> str:
        name = unique(prefix)
        bus.create_topics([TopicSpec(name, partitions, configs)])
        return name

    return make


@pytest.fixture
def effects_url(bus_spec: BusSpec, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The handler's own database: SQLite next to an embedded-SQLite bus, else PostgreSQL."""
    if bus_spec.label == "embedded-sqlite":
        return f"sqlite+pysqlite:///{tmp_path / 'effects.db'}"
    make: Callable[[], str] = request.getfixturevalue("fresh_postgres_db")
    return make()


@pytest.fixture
def span_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A private tracer provider recording into memory (the global one is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
