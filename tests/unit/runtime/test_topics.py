"""The bus creates exactly the registry's topics, with the registry's partitions and configs."""

from __future__ import annotations

from contracts.topics import TOPICS
from services.runtime.topics import topic_specs


def test_every_registry_topic_becomes_one_spec_with_its_partitions_and_retention() -> None:
    specs = {spec.name: spec for spec in topic_specs()}
    assert set(specs) == {t.name for t in TOPICS}
    for t in TOPICS:
        assert specs[t.name].partitions == t.partitions
        assert dict(specs[t.name].configs) == t.kafka_configs()
    assert specs["pseudonymise.records.v1"].configs["cleanup.policy"] == "compact"
