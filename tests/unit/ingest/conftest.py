"""Fixtures for ingest's unit tests: an app on SQLite with an in-memory bus and a dev issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.ingest.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import AUDIENCE, ISSUER, FakeBus, settings_for


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer.generate(issuer=ISSUER)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def make_client(
    tmp_path: Path, issuer: DevIssuer, bus: FakeBus
) -> Iterator[Callable[..., TestClient]]:
    """Factory: ``make_client(**limits)`` starts an app with those limits."""
    clients: list[TestClient] = []

    def make(*, batch_size: int = 50, **limits: Any) -> TestClient:
        settings = settings_for(tmp_path, batch_size=batch_size, **limits)
        app = create_app(settings, bus=bus, verifier=issuer.verifier(audience=AUDIENCE))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
