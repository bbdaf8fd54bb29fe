"""The committed JSON Schemas and AsyncAPI document match what the contracts generate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from contracts.events import ALL_EVENTS
from contracts.generate import (
    ASYNCAPI_FILE,
    SCHEMA_DIR,
    asyncapi_document,
    drift,
    main,
    render,
    write,
)
from contracts.records import RECORD_MODELS
from contracts.topics import TOPICS


def test_committed_schemas_match_the_contracts() -> None:
    problems = drift(SCHEMA_DIR)
    assert not problems, "regenerate with: python -m contracts.generate\n" + "\n".join(problems)


def test_generation_is_deterministic() -> None:
    assert render() == render()


def test_there_is_one_schema_per_event_and_per_record_kind() -> None:
    files = render()
    for event in ALL_EVENTS:
        assert f"events/{event.event_type}.json" in files
    for record_type in RECORD_MODELS:
        assert f"records/{record_type.value}.json" in files
    assert {"envelope.json", ASYNCAPI_FILE} <= set(files)


def test_an_event_schema_names_its_type_and_its_identifier_fields() -> None:
    schema = json.loads(render()["events/ingest.record-quarantined.v1.json"])
    assert schema["x-event-type"] == "ingest.record-quarantined.v1"
    assert schema["x-identifier-fields"] == ["original_line"]
    assert schema["$schema"].endswith("2020-12/schema")


def test_asyncapi_has_a_channel_per_topic_with_its_address() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {t.name for t in TOPICS}
    for t in TOPICS:
        channel = document["channels"][t.name]
        assert channel["address"] == t.name
        assert channel["x-identifiable"] is t.identifiable
        assert set(channel["messages"]) == set(t.event_types)


def test_asyncapi_operations_send_for_producers_and_receive_for_each_consumer() -> None:
    operations = asyncapi_document()["operations"]
    expected = {(t.producer.value, "send", t.name) for t in TOPICS} | {
        (c.value, "receive", t.name) for t in TOPICS for c in t.consumers
    }
    found = {
        (op["x-service"], op["action"], op["channel"]["$ref"].removeprefix("#/channels/"))
        for op in operations.values()
    }
    assert found == expected


def test_every_asyncapi_reference_resolves() -> None:
    document = asyncapi_document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"unresolved {ref}"
            target = target[part]


def test_asyncapi_messages_mark_identifiable_payloads() -> None:
    messages = asyncapi_document()["components"]["messages"]
    assert messages["ingest.child-received.v1"]["x-identifiable"] is True
    assert messages["link.result-published.v1"]["x-identifiable"] is False
    assert messages["bus.message-dead-lettered.v1"]["x-identifiable"] is True


def test_write_then_check_reports_no_drift_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "old.v1.json").write_text("{}")
    assert "missing: asyncapi.json" in write(tmp_path)
    assert drift(tmp_path) == []
    assert not (tmp_path / "events" / "old.v1.json").exists()


def test_check_mode_exits_non_zero_and_names_the_drifted_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path)
    (tmp_path / "records" / "child.json").write_text("{}\n")
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    assert "records/child.json" in capsys.readouterr().err
    assert main(["--directory", str(tmp_path)]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 0


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "contracts.generate", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
