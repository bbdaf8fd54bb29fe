"""The ``fjo`` command line: version, topic creation and drift on real Kafka, the bus benchmark."""

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


def test_fjo_dash_dash_version_prints_the_version_and_runs_no_command() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"fjo {__version__}"


def test_topics_check_finds_no_drift_after_create_and_reports_a_changed_config(
    kafka_bootstrap: str,
) -> None:
    created = runner.invoke(app, ["topics", "create", "--bootstrap", kafka_bootstrap])
    assert created.exit_code == 0, created.output
    clean = runner.invoke(app, ["topics", "check", "--bootstrap", kafka_bootstrap])
    assert clean.exit_code == 0, clean.output
    assert f"no drift: {len(TOPICS)} topics" in clean.stdout

    topic = next(t for t in TOPICS if t.retention != "compact")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    def set_configs(configs: dict[str, str]) -> None:
        # Not incremental: the topic's dynamic configs become exactly these.
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name, configs)])

    try:
        set_configs({"cleanup.policy": "delete", "retention.ms": "60000"})
        drifted = runner.invoke(app, ["topics", "check", "--bootstrap", kafka_bootstrap])
    finally:
        set_configs(topic.kafka_configs())
        admin.close()
    assert drifted.exit_code == 1, drifted.output
    assert drifted.stdout.splitlines() == [
        f"{topic.name}: retention.ms 60000 on the broker, {topic.retention} in the registry"
    ]
    again = runner.invoke(app, ["topics", "check", "--bootstrap", kafka_bootstrap])
    assert again.exit_code == 0, again.output


def test_the_broker_view_shows_missing_topics_partitions_and_cleanup_policy(
    kafka_bootstrap: str,
) -> None:
    from uuid import uuid4

    from services.runtime.bus.api import TopicSpec
    from services.runtime.bus.kafka import KafkaBus
    from services.runtime.topics import topic_drift

    run = uuid4().hex[:8]
    wanted = [
        TopicSpec(f"drift-{run}.a.v1", 3, {"cleanup.policy": "delete", "retention.ms": "86400000"}),
        TopicSpec(f"drift-{run}.b.v1", 2, {"cleanup.policy": "compact"}),
        TopicSpec(f"drift-{run}.c.v1", 1, {"cleanup.policy": "delete"}),
    ]
    on_broker = [
        TopicSpec(wanted[0].name, 2, {"cleanup.policy": "delete", "retention.ms": "86400000"}),
        TopicSpec(wanted[1].name, 2, {"cleanup.policy": "delete"}),
    ]
    bus = KafkaBus(kafka_bootstrap)
    try:
        bus.create_topics(on_broker)
        seen = bus.describe_topics([s.name for s in wanted])
    finally:
        bus.close()
    assert set(seen) == {wanted[0].name, wanted[1].name}
    assert seen[wanted[0].name].partitions == 2
    assert topic_drift(wanted, seen) == [
        f"{wanted[0].name}: partitions 2 on the broker, 3 in the registry",
        f"{wanted[1].name}: cleanup.policy delete on the broker, compact in the registry",
        f"{wanted[2].name}: missing on the broker",
    ]
    assert topic_drift(on_broker, seen) == []
