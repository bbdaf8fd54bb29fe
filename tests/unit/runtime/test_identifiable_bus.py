"""Identifiable topics live apart on the embedded default: in a log of their own that only
ingest and pseudonymise are configured with, kept as long as the registry's retention says.
The shared log, which link and access open, refuses them (it used to hold
``ingest.records.v1`` in clear)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from contracts.topics import (
    INGEST_QUARANTINE,
    INGEST_RECORDS,
    PSEUDONYMISE_DEAD_LETTERS,
    PSEUDONYMISE_RECORDS,
    TOPICS,
)
from fjo.stack.embedded import EmbeddedStack
from services.access.config import AccessSettings
from services.ingest.config import IngestSettings
from services.link.config import LinkSettings
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.bus.api import TopicSpec
from services.runtime.bus.embedded import EmbeddedBus, IdentifiableTopicError
from services.runtime.bus.factory import bus_from_settings, make_bus
from services.runtime.bus.separated import SeparatedBus
from services.runtime.settings import IdentifiableBusSettings
from services.runtime.topics import identifiable_topic_names, topic_specs

IDENTIFIABLE = sorted(identifiable_topic_names())


def url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def topics_in(path: Path) -> set[str]:
    """Topic names with a definition or a record in a bus file (read with sqlite3 alone)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        named = {r[0] for r in conn.execute("SELECT name FROM bus_topics")}
        return named | {r[0] for r in conn.execute("SELECT DISTINCT topic FROM bus_records")}
    finally:
        conn.close()


def test_the_registry_marks_ingests_topics_and_pseudonymises_dead_letters_identifiable() -> None:
    assert (
        sorted([INGEST_RECORDS.name, INGEST_QUARANTINE.name, PSEUDONYMISE_DEAD_LETTERS.name])
        == IDENTIFIABLE
    )


@pytest.mark.parametrize("topic", IDENTIFIABLE)
def test_a_shared_log_refuses_to_create_produce_or_consume_an_identifiable_topic(
    topic: str, tmp_path: Path
) -> None:
    bus = EmbeddedBus(url(tmp_path / "bus.db"))
    try:
        with pytest.raises(IdentifiableTopicError, match="not configured for identifiable"):
            bus.create_topics([TopicSpec(topic, 1)])
        producer = bus.producer()
        with pytest.raises(IdentifiableTopicError):
            producer.publish(topic, b"{}")
        producer.close()
        with pytest.raises(IdentifiableTopicError):
            bus.consumer("pseudonymise", [topic])
    finally:
        bus.close()
    assert topics_in(tmp_path / "bus.db") == set()


def test_the_identifiable_log_holds_nothing_else(tmp_path: Path) -> None:
    bus = EmbeddedBus(url(tmp_path / "identifiable.db"), identifiable=True)
    try:
        with pytest.raises(IdentifiableTopicError, match="not identifiable"):
            bus.create_topics([TopicSpec(PSEUDONYMISE_RECORDS.name, 1)])
    finally:
        bus.close()


def test_a_separated_bus_keeps_each_topic_in_its_own_file_and_reads_it_back(
    tmp_path: Path,
) -> None:
    shared, identifiable = tmp_path / "bus.db", tmp_path / "identifiable.db"
    bus = make_bus("embedded", database_url=url(shared), identifiable_url=url(identifiable))
    assert isinstance(bus, SeparatedBus)
    try:
        bus.create_topics(topic_specs())
        producer = bus.producer()
        for topic in TOPICS:
            producer.publish(topic.name, b'{"n": 1}', key=b"k")
        producer.flush()
        producer.close()
        consumer = bus.consumer("pseudonymise", [INGEST_RECORDS.name])
        try:
            deadline = time.monotonic() + 10
            got = []
            while not got and time.monotonic() < deadline:
                got = consumer.poll(timeout_s=0.5)
        finally:
            consumer.close()
        assert [m.topic for m in got] == [INGEST_RECORDS.name]
        with pytest.raises(Exception, match="not both"):
            bus.consumer("mixed", [INGEST_RECORDS.name, PSEUDONYMISE_RECORDS.name])
    finally:
        bus.close()
    assert topics_in(identifiable) == set(IDENTIFIABLE)
    assert topics_in(shared) == {t.name for t in TOPICS} - set(IDENTIFIABLE)


def test_the_identifiable_log_drops_records_past_their_topics_retention(tmp_path: Path) -> None:
    bus = EmbeddedBus(url(tmp_path / "identifiable.db"), identifiable=True)
    try:
        bus.create_topics(topic_specs([INGEST_RECORDS, INGEST_QUARANTINE]))
        producer = bus.producer()
        producer.publish(INGEST_RECORDS.name, b"clear", key=b"k")
        producer.publish(INGEST_QUARANTINE.name, b"clear", key=b"k")
        producer.close()
        now = int(time.time() * 1000)
        week = int(INGEST_RECORDS.retention)  # type: ignore[arg-type]
        assert bus.enforce_retention(now_ms=now + week - 60_000) == 0
        # A week on, the records are gone; quarantine's two weeks are not over yet.
        assert bus.enforce_retention(now_ms=now + week + 60_000) == 1
        assert bus.enforce_retention(now_ms=now + 2 * week + 60_000) == 1
    finally:
        bus.close()


def test_a_separated_bus_reads_each_topics_lag_from_its_own_log_and_retention_moves_the_start(
    tmp_path: Path,
) -> None:
    bus = make_bus(
        "embedded",
        database_url=url(tmp_path / "bus.db"),
        identifiable_url=url(tmp_path / "identifiable.db"),
    )
    assert isinstance(bus, SeparatedBus)
    try:
        bus.create_topics(topic_specs([INGEST_RECORDS, PSEUDONYMISE_RECORDS]))
        producer = bus.producer()
        for topic in (INGEST_RECORDS.name, PSEUDONYMISE_RECORDS.name, PSEUDONYMISE_RECORDS.name):
            producer.publish(topic, b"{}", key=b"k")
        producer.close()
        lags = bus.consumer_lag("g", [PSEUDONYMISE_RECORDS.name, INGEST_RECORDS.name])
        assert {(lag.topic, lag.lag) for lag in lags if lag.lag} == {
            (INGEST_RECORDS.name, 1),
            (PSEUDONYMISE_RECORDS.name, 2),
        }
        week = int(INGEST_RECORDS.retention)  # type: ignore[arg-type]
        bus.identifiable.enforce_retention(now_ms=int(time.time() * 1000) + week + 60_000)
        # The record is gone: a member of the group would start past it, so it is no lag.
        gone = [lag for lag in bus.consumer_lag("g", [INGEST_RECORDS.name]) if lag.end]
        assert [(lag.start, lag.end, lag.lag) for lag in gone] == [(1, 1, 0)]
    finally:
        bus.close()


def test_producers_enforce_retention_as_they_write(tmp_path: Path) -> None:
    topic = "test.short-lived.v1"
    bus = EmbeddedBus(
        url(tmp_path / "identifiable.db"),
        identifiable=True,
        identifiable_topics={topic},
        retention_check_s=0,
    )
    try:
        bus.create_topics(
            [TopicSpec(topic, 1, {"cleanup.policy": "delete", "retention.ms": "300"})]
        )
        producer = bus.producer()
        producer.publish(topic, b"old")
        producer.flush()
        time.sleep(0.6)
        producer.publish(topic, b"new")
        producer.flush()
        producer.close()
    finally:
        bus.close()
    conn = sqlite3.connect(tmp_path / "identifiable.db")
    try:
        assert [bytes(r[0]) for r in conn.execute("SELECT value FROM bus_records")] == [b"new"]
    finally:
        conn.close()


def test_only_ingest_and_pseudonymise_are_configured_with_the_identifiable_log(
    tmp_path: Path,
) -> None:
    for settings in (IngestSettings(environment="dev"), PseudonymiseSettings(environment="dev")):
        assert settings.bus.embedded_identifiable() not in (None, settings.bus.embedded_url)
    for other in (LinkSettings(environment="dev"), AccessSettings(environment="dev")):
        assert other.bus.embedded_identifiable() is None
        bus = bus_from_settings(
            other.bus.model_copy(update={"embedded_url": url(tmp_path / "shared.db")})
        )
        try:
            assert isinstance(bus, EmbeddedBus)
            with pytest.raises(IdentifiableTopicError):
                bus.consumer("spy", [INGEST_RECORDS.name])
        finally:
            bus.close()


def test_the_identifiable_log_cannot_be_the_shared_one() -> None:
    with pytest.raises(ValueError, match=r"must not be bus\.embedded_url"):
        IdentifiableBusSettings(
            embedded_url="sqlite:///x.db", embedded_identifiable_url="sqlite:///x.db"
        )


def test_the_embedded_stack_gives_the_identifiable_file_to_ingest_and_pseudonymise_only(
    tmp_path: Path,
) -> None:
    stack = EmbeddedStack(tmp_path / "stack")
    variable = "BUS__EMBEDDED_IDENTIFIABLE_URL"
    for service in ("ingest", "pseudonymise"):
        env = stack.env(service)
        assert env[f"FJO_{service.upper()}_{variable}"].endswith("identifiable-bus.db")
    for service in ("link", "access"):
        env = stack.env(service)
        assert not [k for k in env if k.endswith(variable)]
        assert "identifiable-bus" not in " ".join(env.values())
