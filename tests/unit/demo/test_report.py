"""The demo's report says plainly when linkage is missing, and never shows link quality then."""

from __future__ import annotations

import json
from pathlib import Path

from fjo.demo.report import write_report
from fjo.demo.run import DemoResult
from fjo.demo.summary import summary_lines
from synth.world import WorldConfig, build_world

WORKSPACE = {
    "query": {"sql": "SELECT 1", "id": "q", "rows": 1, "preview": [[1]]},
    "job": {"id": "j", "state": "succeeded", "script_sha256": "0" * 64, "outputs": []},
    "output": {
        "id": "o", "title": "t", "preset": "threshold-10", "status": "review", "summary": "",
        "state": "released", "approvals": ["dave", "erin"], "table": "a,b",
    },
}  # fmt: skip


def test_without_a_link_worker_the_report_and_summary_say_linkage_is_missing(
    tmp_path: Path,
) -> None:
    world = build_world(WorldConfig(spine_size=200, cases=5))
    receipts = {
        "wds/spine-person": {"received": 202, "accepted": 200, "rejected": 2, "duplicates": 0}
    }
    evaluation = {
        "records_expected": 200,
        "records_in_research_store": 200,
        "research_store_rows": 200,
        "missing_by_feed": {},
        "link_running": False,
        "link_decisions": 0,
    }
    leaks = {
        "clean": True, "findings": 0, "canaries": 10, "hashed_only": 0, "too_short_to_scan": 0,
        "bytes_scanned": 100, "chance_hits": 0, "places": {},
    }  # fmt: skip
    extract = {
        "project_id": "p", "extract_id": "e", "rows": 0, "files": [], "disclosure": {},
        "hash_mismatches": [], "approver": "carol", "requested_by": "bob",
    }  # fmt: skip
    report = write_report(
        tmp_path,
        world=world,
        receipts=receipts,
        evaluation=evaluation,
        leaks=leaks,
        extract=extract,
        workspace=WORKSPACE,
        samples=[(0.0, {"ingest": 0}), (1.0, {"ingest": 200})],
        timings={"total": 1.0},
        link_running=False,
        world_dir=tmp_path / "world",
        problems=[],
    )
    assert report["linkage"] == "missing"
    html = (tmp_path / "report.html").read_text()
    assert "Linkage is missing" in html and "precision" not in html.lower()
    lines = summary_lines(DemoResult(out=tmp_path, report=report))
    assert any("linkage    MISSING" in line for line in lines)
    assert json.loads((tmp_path / "report.json").read_text())["linkage"] == "missing"


def test_a_problem_fails_the_demo(tmp_path: Path) -> None:
    world = build_world(WorldConfig(spine_size=200, cases=5))
    report = write_report(
        tmp_path,
        world=world,
        receipts={},
        evaluation={
            "records_expected": 0, "records_in_research_store": 0, "research_store_rows": 0,
            "missing_by_feed": {}, "link_running": True, "link_decisions": 0,
        },
        leaks={
            "clean": True, "findings": 0, "canaries": 0, "hashed_only": 0,
            "too_short_to_scan": 0, "bytes_scanned": 0, "chance_hits": 0, "places": {},
        },
        extract={
            "project_id": "p", "extract_id": "e", "rows": 0, "files": [], "disclosure": {},
            "hash_mismatches": [], "approver": "carol", "requested_by": "bob",
        },
        workspace=WORKSPACE,
        samples=[],
        timings={},
        link_running=True,
        world_dir=tmp_path,
        problems=["processes exited early: ['link-worker']", "<script>alert(1)</script>"],
    )  # fmt: skip
    assert not report["ok"]
    html = (tmp_path / "report.html").read_text()
    assert "link-worker" in html
    # Text from the run is escaped, never markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
