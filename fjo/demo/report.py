"""The demo's report: ``report.json`` with every figure, and ``report.html`` from
``templates/demo_report.html`` on the shared layout (``services.runtime.html``)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from services.runtime.html import render
from synth.world import World

__all__ = ["write_report"]

TEMPLATES = Path(__file__).parent / "templates"


def _throughput(samples: list[tuple[float, dict[str, int]]]) -> dict[str, dict[str, float]]:
    """Per stage: records, busy seconds (sampling intervals in which its count grew) and
    records per busy second; idle waits between the pushes do not count."""
    out: dict[str, dict[str, float]] = {}
    if not samples:
        return out
    for stage in samples[-1][1]:
        series = [(t, c.get(stage, 0)) for t, c in samples]
        final = series[-1][1]
        if not final:
            continue
        busy = sum(t1 - t0 for (t0, c0), (t1, c1) in pairwise(series) if c1 > c0)
        seconds = max(busy, 0.5)
        out[stage] = {
            "records": final,
            "seconds": round(seconds, 1),
            "per_s": round(final / seconds, 1),
        }
    return out


def write_report(
    out: Path,
    *,
    world: World,
    receipts: dict[str, dict[str, Any]],
    evaluation: dict[str, Any],
    leaks: dict[str, Any],
    extract: dict[str, Any],
    workspace: dict[str, Any],
    samples: list[tuple[float, dict[str, int]]],
    timings: dict[str, float],
    link_running: bool,
    world_dir: Path,
    problems: list[str],
) -> dict[str, Any]:
    """Write ``report.json`` and ``report.html`` into ``out``; return the report."""
    receipt_rows = []
    reconciles = True
    for key, r in receipts.items():
        balanced = r["received"] == r["accepted"] + r["rejected"] + r["duplicates"]
        reconciles &= balanced
        receipt_rows.append(
            {
                "feed": key,
                "received": r["received"],
                "accepted": r["accepted"],
                "rejected": r["rejected"],
                "duplicates": r["duplicates"],
                "reconciles": balanced,
                "seconds": r.get("seconds"),
                "errors": [
                    {"line": e.get("line"), "errors": [x.get("type") for x in e.get("errors", [])]}
                    for e in r.get("errors", [])
                ][:10],
            }
        )
    throughput = _throughput(samples)
    all_stored = evaluation["records_in_research_store"] == evaluation["records_expected"]
    linkage_missing = not link_running or not evaluation.get("link_decisions")
    report: dict[str, Any] = {
        "ok": reconciles
        and all_stored
        and leaks["clean"]
        and not extract["hash_mismatches"]
        and workspace["output"]["state"] == "released"
        and not problems,
        "problems": problems,
        "linkage": "missing" if linkage_missing else "evaluated",
        "world": {
            "config": world.config.__dict__,
            "feeds": world.counts(),
            "folder": str(world_dir),
        },
        "receipts": receipt_rows,
        "receipts_reconcile": reconciles,
        "research_store": {
            "expected": evaluation["records_expected"],
            "present": evaluation["records_in_research_store"],
            "missing_by_feed": evaluation["missing_by_feed"],
        },
        "throughput": throughput,
        "evaluation": evaluation,
        "leak_check": leaks,
        "extract": extract,
        "workspace": workspace,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    html = render(TEMPLATES, "demo_report.html", report=report, view=_view(report, samples))
    (out / "report.html").write_text(html, encoding="utf-8")
    return report


def _view(report: dict[str, Any], samples: list[tuple[float, dict[str, int]]]) -> dict[str, Any]:
    """The report's tables and chart data, shaped for ``templates/demo_report.html``."""
    ev = report["evaluation"]
    stages = sorted({k for _t, c in samples for k in c})
    return {
        "receipts": [
            [
                r["feed"],
                r["received"],
                r["accepted"],
                r["rejected"],
                r["duplicates"],
                "yes" if r["reconciles"] else "NO",
                r["seconds"],
            ]
            for r in report["receipts"]
        ],
        "series": {s: [(t, float(c.get(s, 0))) for t, c in samples] for s in stages},
        "throughput": [
            [s, v["records"], v["seconds"], v["per_s"]] for s, v in report["throughput"].items()
        ],
        "group_rates": {
            group: {f"{k} (n={v['records']})"[:18]: v["rate"] for k, v in values.items()}
            for group, values in ev.get("rates_by_group", {}).items()
        },
        "scores": {
            label: {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": float(c) for i, c in enumerate(hist)}
            for label, hist in ev.get("scores", {}).items()
        },
        "files": [
            [f.get("name"), f.get("rows", ""), f.get("bytes", ""), str(f.get("sha256", ""))[:16]]
            for f in report["extract"]["files"]
        ],
        "places": [
            [
                name,
                f"{p['bytes']:,}",
                p["finding_count"],
                p["chance_hits"],
                "; ".join(p["findings"][:3]),
            ]
            for name, p in report["leak_check"]["places"].items()
        ],
    }
