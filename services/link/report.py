"""Linkage quality report: link rates by group, score distribution, review queue, P/R/F1.

Missed links that differ by group bias research (the unmatched are often the most
vulnerable), so rates are broken down by sex, age band and area. Writes ``report.json`` and
``report.html`` with inline SVG bar charts (no plotting library).
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

__all__ = ["build_report", "summarise"]

ACCEPTED = {"1", "4", "39", "50", "60"}
REVIEW = {"90", "91"}


def _age_band(dob: str, today: date) -> str:
    try:
        y, m, d = (int(x) for x in dob.split("-"))
        age = today.year - y - ((today.month, today.day) < (m, d))
    except ValueError:
        return "unknown"
    if age < 1:
        return "<1"
    for hi, label in ((5, "1-4"), (11, "5-10"), (18, "11-17"), (26, "18-25"), (41, "26-40")):
        if age < hi:
            return label
    return "41+"


def summarise(
    predictions: list[dict[str, str]],
    incoming: dict[str, dict[str, str]] | None = None,
    truth: dict[str, str] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The report as a dict (pure)."""
    today = today or date.today()
    status = Counter(p["status"] for p in predictions)
    n = len(predictions)
    linked = sum(status[s] for s in ACCEPTED)
    by: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    bins = [0] * 10
    for p in predictions:
        prob = float(p["match_probability"] or 0)
        bins[min(int(prob * 10), 9)] += 1
        ok = int(p["status"] in ACCEPTED)
        if incoming and p["incoming_id"] in incoming:
            row = incoming[p["incoming_id"]]
            groups = {
                "sex": row.get("sex") or "unknown",
                "age_band": _age_band(row.get("date_of_birth", ""), today),
                "area": (row.get("postcode") or "unknown").split(" ")[0][:4].upper() or "unknown",
                "source": row.get("source") or "all",
            }
            for g, v in groups.items():
                by[g][v][0] += ok
                by[g][v][1] += 1
    out: dict[str, Any] = {
        "records": n,
        "linked": linked,
        "link_rate": round(linked / n, 4) if n else 0.0,
        "review_queue": sum(status[s] for s in REVIEW),
        "status_counts": dict(sorted(status.items())),
        "probability_histogram": {
            f"{i / 10:.1f}-{(i + 1) / 10:.1f}": c for i, c in enumerate(bins)
        },
        "link_rate_by": {
            g: {v: round(a / t, 4) for v, (a, t) in sorted(vals.items())} for g, vals in by.items()
        },
    }
    if truth is not None:
        pred = {
            p["incoming_id"]: p["spine_id"] if p["status"] in ACCEPTED else "" for p in predictions
        }
        tp = sum(1 for k, v in pred.items() if v and truth.get(k) == v)
        fp = sum(1 for k, v in pred.items() if v and truth.get(k) != v)
        fn = sum(1 for k, v in truth.items() if v and pred.get(k) != v)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out["accuracy"] = {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
    return out


def _svg_bars(title: str, data: dict[str, float], fmt: str = "{:.0f}") -> str:
    if not data:
        return ""
    width, bar_h = 520, 18
    top = max(data.values()) or 1
    rows = []
    for i, (label, value) in enumerate(data.items()):
        w = int(300 * value / top)
        y = 24 + i * (bar_h + 4)
        rows.append(
            f'<text x="0" y="{y + 13}" font-size="12">{html.escape(str(label))}</text>'
            f'<rect x="120" y="{y}" width="{w}" height="{bar_h}" fill="#3b6ea5"/>'
            f'<text x="{125 + w}" y="{y + 13}" font-size="12">{fmt.format(value)}</text>'
        )
    h = 30 + len(data) * (bar_h + 4)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}">'
        f'<text x="0" y="14" font-size="14" font-weight="bold">{html.escape(title)}</text>'
        + "".join(rows)
        + "</svg>"
    )


def build_report(
    predictions: Path, out: Path, *, incoming: Path | None = None, truth: Path | None = None
) -> Path:
    """Read CSVs, write report.json and report.html into ``out``; returns the HTML path."""
    with open(predictions, newline="") as fh:
        preds = list(csv.DictReader(fh))
    inc = None
    if incoming:
        with open(incoming, newline="") as fh:
            inc = {r["id"]: r for r in csv.DictReader(fh)}
    tru = None
    if truth:
        with open(truth, newline="") as fh:
            tru = {r["incoming_id"]: r["spine_id"] for r in csv.DictReader(fh)}
    rep = summarise(preds, inc, tru)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(rep, indent=2))
    parts = [
        "<!doctype html><meta charset='utf-8'><title>fjo linkage quality</title>",
        "<h1>Linkage quality</h1>",
        f"<p>{rep['records']} records, {rep['linked']} linked ({rep['link_rate']:.1%}), "
        f"{rep['review_queue']} in the review queue.</p>",
    ]
    if "accuracy" in rep:
        a = rep["accuracy"]
        parts.append(f"<p>Precision {a['precision']}, recall {a['recall']}, F1 {a['f1']}.</p>")
    parts.append(_svg_bars("Match probability", rep["probability_histogram"]))
    parts.append(_svg_bars("Status codes", rep["status_counts"]))
    for g, rates in rep["link_rate_by"].items():
        parts.append(_svg_bars(f"Link rate by {g}", rates, "{:.1%}"))
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
