"""``fjo demo`` end to end on the embedded default with a tiny world, as ``make demo`` runs it.

Every service role runs as its own process (SQLite files and the embedded bus; no Kafka, no
PostgreSQL); the partners push over HTTP; the researcher's extract is downloaded. The test
reads what the demo wrote and checks it against the files themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import threading
import time
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
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=330, check=False,
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


def test_the_story_ends_with_a_query_a_job_and_a_released_checked_output(
    demo: tuple[Path, Path, dict[str, Any], str],
) -> None:
    out, _state, report, output = demo
    ws = report["workspace"]
    assert ws["query"]["rows"] >= 2 and sum(n for _, n in ws["query"]["preview"]) > 0
    assert ws["job"]["state"] == "succeeded" and ws["job"]["outputs"]
    released = ws["output"]
    assert released["state"] == "released" and released["approvals"] == ["dave", "erin"]
    assert released["status"] in ("pass", "review") and "LAW_TYPE" in released["table"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "In the workspace" in html and "released by dave and erin" in html
    assert "workspace  query" in output


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


PHASES = {
    "start-up": "▶ Starting the services",
    "push": "▶ The spine's owner (wds) pushes the spine over HTTP",
    "drain": "draining: until every service has consumed everything",
    "story": "▶ A researcher's project",
    "report": "▶ Evaluating linkage",
}
"""Each phase of the demo and the line it prints as the phase begins."""


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_stops_the_demo_and_every_process_it_started_at_each_phase(
    phase: str, tmp_path: Path
) -> None:
    """SIGINT once the phase's line is out (no guessed sleeps) stops the demo with 130 and
    leaves no process behind. The demo starts with SIGINT ignored, as a background job of a
    non-interactive shell inherits it (how CI once saw the demo run to the end and exit 0):
    it must install its own handler."""
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [*fjo_command(), "demo", "--small", "--spine-size", "150", "--cases", "8",
         "--out", str(tmp_path / "out"), "--state-dir", str(state)],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 150
        while not any(PHASES[phase] in line for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"the demo ended before {phase}:\n" + "".join(seen)
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        while (line := lines.get(timeout=10)) is not None:
            seen.append(line)
        output = "".join(seen)
        assert proc.returncode == 130, f"{phase}: exit {proc.returncode}\n{output[-3000:]}"
        assert "fjo demo interrupted" in output and "fjo demo: OK" not in output
        assert _processes_of(state) == [], output[-2000:]
        stack = state / "stack"
        assert not (stack / "stack.json").exists()
        assert not list((stack / "pids").glob("*.pid"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _processes_of(state):  # whatever a failed run left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _read_lines(proc: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


def _processes_of(state: Path) -> list[int]:
    """Live processes whose environment names ``state``: the demo's services (each in a
    session of its own, so only their settings tie them to this demo)."""
    marker = str(state.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and b"zombie" not in _status(int(entry.name)):
            found.append(int(entry.name))
    return found


def _status(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"
