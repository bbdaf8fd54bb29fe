"""Ingest creates the topics it produces at start-up, unless told not to (in Kubernetes the
topics are Strimzi KafkaTopics and ingest's KafkaUser may not create topics)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contracts.topics import topics_produced_by
from services.ingest.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import AUDIENCE, FakeBus, settings_for


@pytest.mark.parametrize("create", [True, False])
def test_topics_are_created_at_start_only_when_the_settings_say_so(
    tmp_path: Path, issuer: DevIssuer, create: bool
) -> None:
    settings = settings_for(tmp_path)
    settings.bus.create_topics = create
    bus = FakeBus()
    with TestClient(create_app(settings, bus=bus, verifier=issuer.verifier(audience=AUDIENCE))):
        pass
    expected = {t.name for t in topics_produced_by("ingest")} if create else set()
    assert set(bus.topics) == expected
