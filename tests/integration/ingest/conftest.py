"""A live ingest server (uvicorn in a thread) on a real bus and database, per backend pair."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.ingest.config import AuthSettings, IngestSettings, LimitSettings
from services.ingest.entrypoints import create_app
from services.runtime.auth import DevIssuer
from services.runtime.bus.api import Bus, Consumer, Message
from services.runtime.bus.factory import bus_from_settings
from services.runtime.settings import IdentifiableBusSettings
from tests.unit.ingest.support import AUDIENCE, ISSUER


@dataclass
class Stack:
    """A running ingest API and the bus it publishes to."""

    url: str
    issuer: DevIssuer
    bus: Bus
    settings: IngestSettings
    label: str

    def token(self, source: str = "cafcass-cymru") -> str:
        return self.issuer.mint("push-test", audience=AUDIENCE, roles=["partner"], source=source)

    def headers(self, source: str = "cafcass-cymru") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(source)}"}

    def consumer(self, topics: list[str]) -> Consumer:
        return self.bus.consumer(f"ingest-test-{uuid.uuid4().hex[:10]}", topics)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving an app in a background thread, on a free local port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ingest-live", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("ingest server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _settings(
    tmp_path: Path, database_url: str, bus: IdentifiableBusSettings, **limits: Any
) -> IngestSettings:
    # dev, explicitly: the live server trusts the dev issuer's key file, as `fjo up` does.
    return IngestSettings(
        environment="dev",
        database_url=database_url,
        bus=bus,
        spool_dir=tmp_path / "spool",
        auth=AuthSettings(issuer=ISSUER, audience=AUDIENCE, dev_key_file=tmp_path / "dev.pem"),
        limits=LimitSettings(**limits),
        publish_batch_size=200,
    )


@pytest.fixture(
    params=[
        pytest.param("embedded-sqlite", id="embedded-sqlite"),
        pytest.param(
            "kafka-postgres", id="kafka-postgres", marks=[pytest.mark.kafka, pytest.mark.postgres]
        ),
    ]
)
def stack_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Factory of live stacks: ingest on SQLite + embedded bus, or PostgreSQL + Kafka."""
    label = request.param
    if label == "embedded-sqlite":
        database_url = f"sqlite+pysqlite:///{tmp_path / 'ingest.db'}"
        bus_settings = IdentifiableBusSettings(
            backend="embedded",
            embedded_url=f"sqlite+pysqlite:///{tmp_path / 'bus.db'}",
            embedded_identifiable_url=f"sqlite+pysqlite:///{tmp_path / 'identifiable-bus.db'}",
        )
    else:
        kafka_bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        database_url = request.getfixturevalue("fresh_postgres_db")()
        bus_settings = IdentifiableBusSettings(backend="kafka", kafka_bootstrap=kafka_bootstrap)
    opened: list[tuple[LiveServer, Bus]] = []

    def make(**limits: Any) -> Stack:
        settings = _settings(tmp_path, database_url, bus_settings, **limits)
        issuer = DevIssuer.from_file(settings.auth.dev_key_file, issuer=ISSUER)
        server = LiveServer(create_app(settings)).__enter__()
        # The test's own bus client, to read what ingest published.
        bus = bus_from_settings(bus_settings)
        opened.append((server, bus))
        return Stack(server.url, issuer, bus, settings, label)

    yield make
    for server, bus in opened:
        server.__exit__()
        bus.close()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()


def read_deliveries(
    consumer: Consumer, expected: dict[str, int], *, timeout_s: float = 60.0, quiet_s: float = 2.0
) -> dict[str, list[Message]]:
    """Messages of the given deliveries: until each has its expected count, then until the
    topic stays quiet for ``quiet_s`` (so that extra, unexpected messages show up)."""
    import json

    got: dict[str, list[Message]] = {delivery_id: [] for delivery_id in expected}
    deadline = time.monotonic() + timeout_s
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        batch = consumer.poll(max_records=1000, timeout_s=0.5)
        mine = 0
        for message in batch:
            delivery_id = json.loads(message.value).get("delivery_id")
            if delivery_id in got:
                got[delivery_id].append(message)
                mine += 1
        if all(len(got[d]) >= n for d, n in expected.items()):
            if quiet_until is None or mine:
                quiet_until = time.monotonic() + quiet_s
            elif time.monotonic() >= quiet_until:
                break
    return got


def read_delivery(
    consumer: Consumer,
    delivery_id: str,
    expected: int,
    *,
    timeout_s: float = 60.0,
    quiet_s: float = 2.0,
) -> list[Message]:
    """Messages of one delivery (see ``read_deliveries``)."""
    return read_deliveries(consumer, {delivery_id: expected}, timeout_s=timeout_s, quiet_s=quiet_s)[
        delivery_id
    ]
