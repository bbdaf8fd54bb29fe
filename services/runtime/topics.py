"""The contracts' topic registry as the bus needs it: names, partitions and Kafka configs."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.topics import IDENTIFIABLE_TOPICS, TOPICS, Topic
from services.runtime.bus.api import TopicSpec

__all__ = ["identifiable_topic_names", "topic_specs"]


def topic_specs(topics: Iterable[Topic] = TOPICS) -> list[TopicSpec]:
    """One ``TopicSpec`` per registry topic, in registry order."""
    return [
        TopicSpec(name=t.name, partitions=t.partitions, configs=t.kafka_configs()) for t in topics
    ]


def identifiable_topic_names(topics: Iterable[Topic] = IDENTIFIABLE_TOPICS) -> frozenset[str]:
    """The topics that carry identifiers in clear: only ingest and pseudonymise touch them."""
    return frozenset(t.name for t in topics if t.identifiable)
