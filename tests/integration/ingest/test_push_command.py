"""``fjo push`` against a live ingest server: progress, a receipt, and a resumed second run."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fjo.cli import app
from fjo.push_cli import EXIT_RESUMABLE
from tests.integration.ingest.conftest import Stack, read_deliveries
from tests.unit.ingest.support import ndjson_delivery


def test_fjo_push_delivers_a_file_in_parts_and_a_second_run_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    delivery = ndjson_delivery(400, bad_every=21, start=60_000_000 + hash(stack.label) % 10_000)
    path = tmp_path / "children.ndjson"
    path.write_bytes(delivery.body)
    command = [
        "push",
        str(path),
        "--source",
        "cafcass-cymru",
        "--type",
        "child",
        "--url",
        stack.url,
        "--token",
        stack.token(),
        "--part-bytes",
        "30000",
        "--json",
    ]
    consumer = stack.consumer(["ingest.records.v1"])

    first = CliRunner().invoke(app, command)
    second = CliRunner().invoke(app, command)

    assert first.exit_code == 0, first.output
    receipt = json.loads(first.stdout)
    assert receipt["parts"] > 3
    assert receipt["received"] == 400
    assert receipt["accepted"] == delivery.good
    assert {e["line"] for e in receipt["errors"]} == set(delivery.bad)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout) == receipt  # everything was already acknowledged
    state = json.loads((tmp_path / "children.ndjson.fjo-push.json").read_text())
    expected = {part["delivery_id"]: part["accepted"] for part in state["done"].values()}
    published = read_deliveries(consumer, expected, quiet_s=1)
    consumer.close()
    assert sum(len(messages) for messages in published.values()) == delivery.good


def test_fjo_push_without_a_reachable_server_stops_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(3).body)

    result = CliRunner().invoke(
        app,
        [
            "push",
            str(path),
            "--source",
            "cafcass-cymru",
            "--type",
            "child",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--retries",
            "0",
        ],
    )

    assert result.exit_code == EXIT_RESUMABLE  # not click's usage error (2)
    assert "run the same command again to resume" in result.output
