"""The ``fjo`` command line: version, topic creation on real Kafka, the bus benchmark."""

from __future__ import annotations

import json
from pathlib import Path

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from typer.testing import CliRunner

from contracts.topics import TOPICS
from fjo import __version__
from fjo.cli import app

runner = CliRunner()


def test_fjo_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"fjo {__version__}"


def test_topics_create_makes_every_registry_topic_with_its_partitions_and_retention(
    kafka_bootstrap: str,
) -> None:
    first = runner.invoke(app, ["topics", "create", "--bootstrap", kafka_bootstrap])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["topics", "create", "--bootstrap", kafka_bootstrap])
    assert again.exit_code == 0, again.output  # idempotent: existing topics stay

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics([t.name for t in TOPICS])}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in TOPICS]
        )
    finally:
        admin.close()
    for t in TOPICS:
        assert len(described[t.name]["partitions"]) == t.partitions, t.name
        topic_configs = configs["topic"][t.name]
        for key, value in t.kafka_configs().items():
            assert topic_configs[key]["value"] == value, (t.name, key)


def test_bench_bus_measures_each_backend_against_raw_kafka_python_in_one_run(
    kafka_bootstrap: str,
) -> None:
    result = runner.invoke(
        app,
        ["bench", "bus", "--messages", "300", "--embedded-messages", "300",
         "--bootstrap", kafka_bootstrap],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for backend in ("raw-kafka", "kafka", "embedded-sqlite"):
        assert f"{backend}: end to end" in result.output
    assert "kafka / raw kafka-python: end to end x" in result.output
    written = result.output.split("written to ")[1].split()[0]
    payload = json.loads(Path(written).read_text())
    assert payload["parameters"]["kafka_messages"] == 300
    assert set(payload["ratio_to_raw_kafka"]) == {"kafka", "embedded-sqlite"}
