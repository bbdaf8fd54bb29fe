"""The contracts' topic registry as the bus needs it: names, partitions and Kafka configs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from contracts.topics import IDENTIFIABLE_TOPICS, TOPICS, Topic
from services.runtime.bus.api import TopicSpec

__all__ = ["identifiable_topic_names", "topic_drift", "topic_specs"]


def topic_specs(topics: Iterable[Topic] = TOPICS) -> list[TopicSpec]:
    """One ``TopicSpec`` per registry topic, in registry order."""
    return [
        TopicSpec(name=t.name, partitions=t.partitions, configs=t.kafka_configs()) for t in topics
    ]


def identifiable_topic_names(topics: Iterable[Topic] = IDENTIFIABLE_TOPICS) -> frozenset[str]:
    """The topics that carry identifiers in clear: only ingest and pseudonymise touch them."""
    return frozenset(t.name for t in topics if t.identifiable)


def topic_drift(specs: Sequence[TopicSpec], broker: Mapping[str, TopicSpec]) -> list[str]:
    """One line per difference between the registry's ``specs`` and the ``broker``'s topics
    (``KafkaBus.describe_topics``): a missing topic, its partition count, each config the
    registry sets (``cleanup.policy``, ``retention.ms``); empty when they agree."""
    drift: list[str] = []
    for spec in specs:
        found = broker.get(spec.name)
        if found is None:
            drift.append(f"{spec.name}: missing on the broker")
            continue
        if found.partitions != spec.partitions:
            drift.append(
                f"{spec.name}: partitions {found.partitions} on the broker, "
                f"{spec.partitions} in the registry"
            )
        for key, value in spec.configs.items():
            actual = found.configs.get(key)
            if actual != value:
                drift.append(f"{spec.name}: {key} {actual} on the broker, {value} in the registry")
    return drift
