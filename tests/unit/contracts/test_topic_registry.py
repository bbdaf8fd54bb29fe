"""The topic registry is consistent and keeps the privacy rules."""

from __future__ import annotations

import re

import pytest

from contracts.events import ALL_EVENTS
from contracts.identifiers import identifier_fields
from contracts.naming import VERSIONED_NAME_PATTERN
from contracts.services import SERVICES, Service
from contracts.topics import (
    INGEST_RECORDS,
    LINK_RESULTS,
    TOPICS,
    Topic,
    dead_letter_topic,
    topic,
    topic_for_event,
    topics_consumed_by,
    topics_produced_by,
)

NAMED = pytest.mark.parametrize("t", TOPICS, ids=lambda t: t.name)


@NAMED
def test_every_topic_is_named_domain_event_version(t: Topic) -> None:
    assert re.fullmatch(VERSIONED_NAME_PATTERN, t.name)


@NAMED
def test_every_topics_domain_is_its_producer(t: Topic) -> None:
    assert t.name.split(".")[0] == t.producer.value


@NAMED
def test_every_producer_and_consumer_is_a_known_service(t: Topic) -> None:
    assert t.producer in SERVICES
    assert set(t.consumers) <= set(SERVICES)
    assert t.producer not in t.consumers


def test_topic_names_are_unique() -> None:
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))


def test_only_pseudonymise_consumes_identifiable_topics() -> None:
    for t in TOPICS:
        if t.identifiable:
            assert set(t.consumers) <= {Service.PSEUDONYMISE}, t.name


def test_only_ingest_and_pseudonymise_produce_identifiable_topics() -> None:
    assert {t.producer for t in TOPICS if t.identifiable} <= {Service.INGEST, Service.PSEUDONYMISE}


def test_events_on_topics_that_are_not_identifiable_have_no_identifier_fields() -> None:
    for t in TOPICS:
        if not t.identifiable:
            for event in t.events:
                assert identifier_fields(event) == set(), (t.name, event.event_type)


def test_events_with_identifier_fields_travel_only_on_identifiable_topics() -> None:
    for t in TOPICS:
        for event in t.events:
            if identifier_fields(event):
                assert t.identifiable, (t.name, event.event_type)


def test_every_consumer_has_its_dead_letter_topic_which_it_produces() -> None:
    for t in TOPICS:
        for consumer, name in zip(t.consumers, t.dead_letter_topics, strict=True):
            assert topic(name).producer is consumer


def test_a_dead_letter_topic_is_identifiable_exactly_when_its_service_reads_identifiable() -> None:
    for service in SERVICES:
        consumed = topics_consumed_by(service)
        if consumed:
            reads_identifiable = any(t.identifiable for t in consumed)
            assert topic(dead_letter_topic(service)).identifiable is reads_identifiable


def test_every_event_type_is_carried_by_some_topic() -> None:
    carried = {e for t in TOPICS for e in t.events}
    assert carried == set(ALL_EVENTS)


def test_the_flow_matches_the_architecture() -> None:
    assert [t.name for t in topics_produced_by("ingest")] == [
        "ingest.records.v1",
        "ingest.quarantine.v1",
    ]
    assert [t.name for t in topics_consumed_by(Service.PSEUDONYMISE)] == ["ingest.records.v1"]
    assert [t.name for t in topics_consumed_by("link")] == ["pseudonymise.linkage-keys.v1"]
    assert {t.name for t in topics_consumed_by("access")} == {
        "pseudonymise.records.v1",
        "link.results.v1",
    }
    assert INGEST_RECORDS.identifiable and not LINK_RESULTS.identifiable


def test_a_topic_is_found_by_name_and_an_unknown_name_is_a_key_error() -> None:
    assert topic("link.results.v1") is LINK_RESULTS
    with pytest.raises(KeyError, match="no topic"):
        topic("link.results.v2")


def test_an_event_type_maps_to_its_one_topic() -> None:
    assert topic_for_event("ingest.child-received.v1") is INGEST_RECORDS
    with pytest.raises(LookupError):
        topic_for_event("bus.message-dead-lettered.v1")


def test_kafka_configs_follow_retention() -> None:
    assert LINK_RESULTS.kafka_configs() == {"cleanup.policy": "compact"}
    assert INGEST_RECORDS.kafka_configs() == {
        "cleanup.policy": "delete",
        "retention.ms": str(7 * 24 * 3600 * 1000),
    }


@NAMED
def test_every_topic_is_described_and_has_partitions(t: Topic) -> None:
    assert t.description and t.partition_key and t.partition_key_description
    assert t.partitions >= 1
