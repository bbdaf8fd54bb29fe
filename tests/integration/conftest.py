"""A platform to run services on: the embedded default, or real Kafka with real PostgreSQL.

``platform`` is parametrised: ``embedded`` (embedded bus and service databases on SQLite
files) and ``kafka`` (the test broker, one fresh PostgreSQL database per service). Topics
are the registry's own names; on Kafka they are shared by the session's tests, so tests
make their record ids unique and read back only what they wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.runtime.bus.api import Bus, Message
from services.runtime.topics import topic_specs


@dataclass
class Platform:
    """A bus and a database URL per service."""

    backend: str
    bus: Bus
    _db: Callable[[str], str]
    _urls: dict[str, str] = field(default_factory=dict)
    kafka_bootstrap: str | None = None
    _worker_buses: list[Bus] = field(default_factory=list)

    def worker_bus(self) -> Bus:
        """A bus for the workers under test. On Kafka the registry's topics hold every
        earlier test's records, so new consumer groups start at the end: call ``join`` on
        each worker before publishing, and it sees only what the test publishes."""
        if self.kafka_bootstrap is None:
            return self.bus
        from services.runtime.bus.kafka import KafkaBus

        bus = KafkaBus(
            self.kafka_bootstrap,
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            linger_ms=2,
            consumer_config={"auto_offset_reset": "latest"},
        )
        self._worker_buses.append(bus)
        return bus

    @staticmethod
    def join(worker: Any) -> None:
        """Poll until ``worker`` holds its partitions (its group's start position is set)."""
        for _ in range(100):
            if worker.consumer.assignment():
                return
            worker.run_once(timeout_s=0.2)
        raise AssertionError(f"worker {worker.group_id} got no partitions")

    def close(self) -> None:
        for bus in self._worker_buses:
            bus.close()
        self.bus.close()

    def db_url(self, service: str) -> str:
        """The (fresh, per-test) database URL of ``service``."""
        if service not in self._urls:
            self._urls[service] = self._db(service)
        return self._urls[service]

    def read_all(
        self, topic: str, group: str, *, until: Callable[[list[Message]], bool], timeout_s=60.0
    ) -> list[Message]:
        """Everything a new consumer group reads from ``topic`` until ``until`` holds."""
        import time

        consumer = self.bus.consumer(group, [topic])
        seen: list[Message] = []
        deadline = time.monotonic() + timeout_s
        try:
            while not until(seen):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{topic}: condition not met in {timeout_s}s")
                seen.extend(consumer.poll(max_records=500, timeout_s=0.5))
        finally:
            consumer.close()
        return seen

    def read_everything(self, topic: str, *, at_least: int = 0) -> list[Message]:
        """All of ``topic`` as a new consumer group sees it: at least ``at_least`` records,
        then until a poll brings nothing more."""
        consumer = self.bus.consumer(f"read-all-{uuid.uuid4().hex[:8]}", [topic])
        seen: list[Message] = []
        try:
            quiet = 0
            for _ in range(600):
                batch = consumer.poll(max_records=500, timeout_s=0.5)
                seen.extend(batch)
                quiet = 0 if batch or not consumer.assignment() else quiet + 1
                if quiet >= 3 and len(seen) >= at_least:
                    return seen
            raise AssertionError(f"{topic}: {len(seen)} records, expected {at_least} or more")
        finally:
            consumer.close()


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("kafka", id="kafka", marks=[pytest.mark.kafka, pytest.mark.postgres]),
    ]
)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    """The embedded default on SQLite, or Kafka + PostgreSQL."""
    if request.param == "embedded":
        from services.runtime.bus.factory import make_bus

        # Identifiable topics in their own file, as on the embedded default.
        bus: Bus = make_bus(
            "embedded",
            database_url=f"sqlite+pysqlite:///{tmp_path / 'bus.db'}",
            identifiable_url=f"sqlite+pysqlite:///{tmp_path / 'identifiable-bus.db'}",
            session_timeout_ms=3000,
            poll_interval_ms=20,
        )

        def sqlite_db(service: str) -> str:
            return f"sqlite+pysqlite:///{tmp_path / (service + '.db')}"

        db = sqlite_db
    else:
        from services.runtime.bus.kafka import KafkaBus

        bootstrap = request.getfixturevalue("kafka_bootstrap")
        make_db = request.getfixturevalue("fresh_postgres_db")
        bus = KafkaBus(bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=2000, linger_ms=2)

        def postgres_db(_service: str) -> str:
            return str(make_db())

        db = postgres_db
    bus.create_topics(topic_specs())
    platform = Platform(request.param, bus, db)
    if request.param == "kafka":
        platform.kafka_bootstrap = bootstrap
    yield platform
    platform.close()
