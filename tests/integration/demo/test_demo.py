"""``fjo demo`` end to end on the embedded default with a tiny world, as ``make demo`` runs it.

Every service role runs as its own process (SQLite files and the embedded bus; no Kafka, no
PostgreSQL); the partners push over HTTP; the researcher's extract is downloaded. The test
reads what the demo wrote and checks it against the files themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fjo.demo.cli import SMALL
from fjo.stack.processes import REPO_ROOT, fjo_command
from services.runtime.topics import identifiable_topic_names

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any], str]:
    root = tmp_path_factory.mktemp("demo")
    out, state = root / "out", root / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
    done = subprocess.run(
        [*fjo_command(), "demo", "--small", "--out", str(out), "--state-dir", str(state),
         "--drain-timeout", "150"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=230, check=False,
    )  # fmt: skip
    assert (out / "report.json").is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    return out, state, report, done.stdout + f"\nexit {done.returncode}\n" + done.stderr


def test_the_demo_writes_the_report_and_says_so(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    out, _state, report, output = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "Leak check" in html and "receipts" in html
    assert "fjo demo: OK" in output, output[-3000:]
    assert report["ok"], json.dumps(report, indent=1, default=str)[:4000]
    assert "exit 0" in output


def test_every_receipt_reconciles_and_only_the_invalid_lines_are_rejected(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, _state, report, _output = demo
    feeds = report["world"]["feeds"]
    assert len(report["receipts"]) == len(feeds) == 11
    for r in report["receipts"]:
        assert r["received"] == r["accepted"] + r["rejected"] + r["duplicates"]
        assert r["accepted"] == feeds[r["feed"]]["valid"]
        assert r["rejected"] == feeds[r["feed"]]["invalid"] > 0
        assert r["duplicates"] == 0


def test_every_accepted_record_reaches_the_research_store(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, _state, report, _output = demo
    accepted = sum(r["accepted"] for r in report["receipts"])
    store = report["research_store"]
    assert store["expected"] == accepted == store["present"]
    assert store["missing_by_feed"] == {}


def test_the_extract_matches_its_manifest(demo: tuple[Path, Path, dict[str, Any], str]) -> None:
    out, _state, report, _output = demo
    manifest = json.loads((out / "extract" / "manifest.json").read_text())
    assert manifest["files"], manifest
    names = {f["name"] for f in manifest["files"]}
    assert {"CHILD.csv", "CASE.csv", "data_dictionary.json"} <= names
    for f in manifest["files"]:
        data = (out / "extract" / f["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
    assert report["extract"]["hash_mismatches"] == []


def test_the_leak_check_is_clean_and_covers_every_downstream_place(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, _state, report, _output = demo
    leaks = report["leak_check"]
    assert leaks["clean"] and leaks["findings"] == 0, leaks
    assert leaks["canaries"] > 500
    places = set(leaks["places"])
    assert {"database access.db", "database link.db"} <= places
    assert any(p.startswith("topic pseudonymise.linkage-keys.v1") for p in places)
    assert any(p.startswith("extract CHILD.csv") for p in places)
    assert "shared bus file bus.db" in places  # every byte of it: link and access open it


def test_identifiable_topics_live_in_a_bus_file_of_their_own(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, state, _report, _output = demo
    stack = state / "stack"
    identifiable = identifiable_topic_names()
    shared = _bus_topics(stack / "bus.db")
    assert shared and not shared & identifiable, shared
    assert {"ingest.records.v1", "ingest.quarantine.v1"} <= _bus_topics(
        stack / "identifiable-bus.db"
    )


def _bus_topics(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM bus_topics")}
        return names | {r[0] for r in conn.execute("SELECT DISTINCT topic FROM bus_records")}
    finally:
        conn.close()


def test_linkage_is_evaluated_against_the_truth_or_reported_missing(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, _state, report, output = demo
    ev = report["evaluation"]
    if report["linkage"] == "missing":
        assert "linkage    MISSING" in output
        return
    assert ev["person_records"] == sum(
        c["valid"]
        for k, c in report["world"]["feeds"].items()
        if k.endswith(("/child", "/adult-party"))
    )
    assert 0.5 < ev["link_rate"] < 1.0  # some people in court are not on the spine
    assert ev["precision"] > 0.9 and ev["recall"] > 0.8


def test_every_process_the_demo_started_is_stopped(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    _out, state, _report, _output = demo
    stack = state / "stack"
    assert not (stack / "stack.json").exists()
    assert not list((stack / "pids").glob("*.pid"))


def test_small_is_small() -> None:
    assert SMALL["spine_size"] <= 500 and SMALL["cases"] <= 30


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    import signal
    import time

    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
    proc = subprocess.Popen(
        [*fjo_command(), "demo", "--small", "--out", str(tmp_path / "out"),
         "--state-dir", str(state)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack_file = state / "stack" / "stack.json"
    deadline = time.monotonic() + 120
    pids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        if stack_file.exists():
            pids = [p["pid"] for p in json.loads(stack_file.read_text())["processes"]]
            if len(pids) >= 5:  # every role started
                break
        time.sleep(0.2)
    assert len(pids) >= 5, "the demo never started its services"
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, output.decode(errors="replace")[-2000:]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or b"zombie" in _status(pid), pid
    assert not stack_file.exists()


def _status(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"
