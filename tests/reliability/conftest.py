"""Fixtures of the reliability tests: dedicated Kafka brokers this package may restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability.harness import Broker


@pytest.fixture(scope="module")
def start_broker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Broker]]:
    """Dedicated brokers for this module (the shared one, ``kafka_bootstrap``, is not used:
    restarting it would disturb other tests); all stopped at the end."""
    del kafka_bootstrap  # only its availability check (skip, or fail under CI)
    started: list[Broker] = []

    def start(name: str) -> Broker:
        broker = Broker(tmp_path_factory.mktemp(f"kafka-{name}"))
        started.append(broker)
        return broker.start()

    yield start
    failures = []
    for broker in started:
        try:
            broker.stop()
        except RuntimeError as exc:  # stop the others anyway
            failures.append(exc)
    assert not failures, failures
