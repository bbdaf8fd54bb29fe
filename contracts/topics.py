"""The topic registry: the single source of truth for every topic and who writes and reads it.

AsyncAPI, Kubernetes topic resources, Kafka ACLs and the services' read/write allow-lists are
generated from ``TOPICS``. Each topic's domain is its producer; dead letters go to
``<consumer>.dead-letters.v1``, one per consuming service, and are as identifiable as the
topics that service reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from contracts.events import (
    RECORD_RECEIVED_EVENTS,
    Event,
    LinkageKeysPublished,
    LinkResultPublished,
    MessageDeadLettered,
    ObjectionReceived,
    PersonObjected,
    PseudonymisedRecordPublished,
    RecordObjected,
    RecordQuarantined,
)
from contracts.services import SERVICES, Service

__all__ = [
    "ACCESS_DEAD_LETTERS",
    "DOWNSTREAM_TOPICS",
    "IDENTIFIABLE_TOPICS",
    "INGEST_QUARANTINE",
    "INGEST_RECORDS",
    "LINK_DEAD_LETTERS",
    "LINK_RESULTS",
    "PSEUDONYMISE_DEAD_LETTERS",
    "PSEUDONYMISE_LINKAGE_KEYS",
    "PSEUDONYMISE_RECORDS",
    "SERVICES",
    "TOPICS",
    "Topic",
    "dead_letter_topic",
    "topic",
    "topic_for_event",
    "topics_consumed_by",
    "topics_produced_by",
]

_DAY_MS = 24 * 60 * 60 * 1000

Retention = int | Literal["compact"]
"""Milliseconds to keep messages, or ``"compact"``: keep the latest message per key."""


@dataclass(frozen=True, slots=True)
class Topic:
    """One Kafka topic and its contract."""

    name: str
    """``<domain>.<event>.v<N>``; the domain is the producing service."""
    events: tuple[type[Event], ...]
    """Event models the topic carries (any version of their families, upcast on read)."""
    partition_key: str
    """The key, as ``Event.partition_key()`` builds it."""
    partition_key_description: str
    """Why this key: what it keeps in order."""
    producer: Service
    consumers: tuple[Service, ...]
    retention: Retention
    identifiable: bool
    """Carries identifiers in clear: only ingest and pseudonymise may touch it."""
    description: str
    partitions: int = 6

    @property
    def event_types(self) -> tuple[str, ...]:
        """Type strings of the events the topic carries."""
        return tuple(event.event_type for event in self.events)

    @property
    def dead_letter_topics(self) -> tuple[str, ...]:
        """Where each consumer of this topic dead-letters its messages."""
        return tuple(dead_letter_topic(consumer) for consumer in self.consumers)

    def kafka_configs(self) -> dict[str, str]:
        """Kafka topic configs (``cleanup.policy``, ``retention.ms``) for this topic."""
        if self.retention == "compact":
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention)}


def dead_letter_topic(service: Service | str) -> str:
    """The dead-letter topic of a consuming service: ``<service>.dead-letters.v1``."""
    return f"{Service(service).value}.dead-letters.v1"


INGEST_RECORDS = Topic(
    name="ingest.records.v1",
    events=(*RECORD_RECEIVED_EVENTS.values(), ObjectionReceived),
    partition_key="<source>/<record type>/<record_id>",
    partition_key_description="One record's versions stay in order, and an objection about "
    "it comes after them. Not per person: who a record is only becomes known in link, after "
    "pseudonymise.",
    producer=Service.INGEST,
    consumers=(Service.PSEUDONYMISE,),
    retention=7 * _DAY_MS,
    identifiable=True,
    description="Partner records that passed their contracts, identifiers in clear. Kept a "
    "week only: ingest's own store is the source for replays.",
    partitions=12,
)

INGEST_QUARANTINE = Topic(
    name="ingest.quarantine.v1",
    events=(RecordQuarantined,),
    partition_key="<source>/<delivery_id>",
    partition_key_description="A delivery's refused lines stay in line order.",
    producer=Service.INGEST,
    consumers=(),
    retention=14 * _DAY_MS,
    identifiable=True,
    description="Lines that failed their contract, with the original line and the errors; "
    "read by operators' tooling inside ingest's boundary, no service consumes it.",
    partitions=3,
)

PSEUDONYMISE_RECORDS = Topic(
    name="pseudonymise.records.v1",
    events=(PseudonymisedRecordPublished, RecordObjected),
    partition_key="<record_token>",
    partition_key_description="One record's versions stay in order; compaction keeps its "
    "latest, which after an objection is the objection (the content is gone from the bus).",
    producer=Service.PSEUDONYMISE,
    consumers=(Service.ACCESS,),
    retention="compact",
    identifiable=False,
    description="Record content with a record token, week of birth, sex, LSOA and local "
    "authority instead of identifiers (SAIL's File 2).",
    partitions=12,
)

PSEUDONYMISE_LINKAGE_KEYS = Topic(
    name="pseudonymise.linkage-keys.v1",
    events=(LinkageKeysPublished, RecordObjected),
    partition_key="<record_token>",
    partition_key_description="One record's versions stay in order; compaction keeps its latest, "
    "so link can rebuild its spine index from the topic (after an objection: the objection).",
    producer=Service.PSEUDONYMISE,
    consumers=(Service.LINK,),
    retention="compact",
    identifiable=False,
    description="Keyed HMAC tokens and Bloom-filter encodings of person records' identifiers.",
    partitions=12,
)

LINK_RESULTS = Topic(
    name="link.results.v1",
    events=(LinkResultPublished, PersonObjected),
    partition_key="<record_token>, or <alf> for a person's objection",
    partition_key_description="One record's results stay in order; compaction keeps the last. "
    "A person's objection is keyed by their ALF.",
    producer=Service.LINK,
    consumers=(Service.ACCESS,),
    retention="compact",
    identifiable=False,
    description="The ALF, status code and match probability of each person record; "
    "re-links publish a superseding result.",
    partitions=12,
)


def _dead_letters(service: Service, identifiable: bool) -> Topic:
    return Topic(
        name=dead_letter_topic(service),
        events=(MessageDeadLettered,),
        partition_key="<original topic>/<original partition>",
        partition_key_description="Dead letters of one source partition stay in order.",
        producer=service,
        consumers=(),
        retention=14 * _DAY_MS if identifiable else 30 * _DAY_MS,
        identifiable=identifiable,
        description=f"Messages {service.value} gave up on, with the error and the original for "
        "replay" + ("; identifiable because its inputs are." if identifiable else "."),
        partitions=1,
    )


PSEUDONYMISE_DEAD_LETTERS = _dead_letters(Service.PSEUDONYMISE, identifiable=True)
LINK_DEAD_LETTERS = _dead_letters(Service.LINK, identifiable=False)
ACCESS_DEAD_LETTERS = _dead_letters(Service.ACCESS, identifiable=False)

TOPICS: tuple[Topic, ...] = (
    INGEST_RECORDS,
    INGEST_QUARANTINE,
    PSEUDONYMISE_RECORDS,
    PSEUDONYMISE_LINKAGE_KEYS,
    LINK_RESULTS,
    PSEUDONYMISE_DEAD_LETTERS,
    LINK_DEAD_LETTERS,
    ACCESS_DEAD_LETTERS,
)
"""Every topic, in flow order then dead letters."""

DOWNSTREAM_TOPICS: tuple[Topic, ...] = tuple(t for t in TOPICS if not t.identifiable)
"""The topics past the privacy boundary (not identifiable): no identifier may ever be on
them, in clear or as an unkeyed hash (the leak checks scan exactly these)."""

IDENTIFIABLE_TOPICS: tuple[Topic, ...] = tuple(t for t in TOPICS if t.identifiable)
"""The topics before the privacy boundary: identifiers in clear, only ingest and pseudonymise
touch them (the embedded bus keeps them in a log of their own)."""

_BY_NAME: Mapping[str, Topic] = MappingProxyType({t.name: t for t in TOPICS})


def topic(name: str) -> Topic:
    """The topic called ``name``; KeyError if the registry has none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no topic {name!r} in the registry") from None


def topics_produced_by(service: Service | str) -> tuple[Topic, ...]:
    """Topics ``service`` may write (its write allow-list)."""
    return tuple(t for t in TOPICS if t.producer is Service(service))


def topics_consumed_by(service: Service | str) -> tuple[Topic, ...]:
    """Topics ``service`` reads (its read allow-list)."""
    return tuple(t for t in TOPICS if Service(service) in t.consumers)


def topic_for_event(event: type[Event] | str) -> Topic:
    """The one topic an event type is published to; LookupError for dead letters, which go
    to ``dead_letter_topic(service)``, and for an event on several topics (a record's
    objection), which its producer frames for each topic by name."""
    event_type = event if isinstance(event, str) else event.event_type
    matches = [t for t in TOPICS if event_type in t.event_types]
    if len(matches) != 1:
        raise LookupError(f"{event_type} is on {len(matches)} topics, not exactly one")
    return matches[0]
