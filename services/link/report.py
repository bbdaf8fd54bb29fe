"""Linkage quality report: link rates by group, score distribution, review queue, P/R/F1.

Missed links that differ by group bias research (the unmatched are often the most
vulnerable), so rates are broken down by sex, age band and area. Writes ``report.json`` and
``report.html`` (``templates/link_report.html`` on the shared layout, inline SVG charts).
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from contracts.events import LINKED_STATUSES
from services.link.domain import REVIEW
from services.runtime.html import render

TEMPLATES = Path(__file__).parent / "templates"

__all__ = ["AGE_BANDS", "age_band", "build_report", "summarise"]

AGE_BANDS: tuple[tuple[int, str], ...] = (
    (1, "<1"),
    (5, "1-4"),
    (11, "5-10"),
    (18, "11-17"),
    (26, "18-25"),
    (41, "26-40"),
)
"""The age bands linkage quality is reported by: (first age in completed years past the band,
label); older is ``41+``. Children's bands follow the family court's (infants, pre-school,
primary, secondary); the adults' separate young parents."""


def age_band(dob: date | str, on: date) -> str:
    """The age band on the day ``on`` of someone born on ``dob`` (a date or ISO text);
    ``unknown`` when ``dob`` is not a date."""
    if isinstance(dob, str):
        try:
            dob = date.fromisoformat(dob)
        except ValueError:
            return "unknown"
    age = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
    for past, label in AGE_BANDS:
        if age < past:
            return label
    return "41+"


def _linked(status: str) -> bool:
    return status.isdigit() and int(status) in LINKED_STATUSES


def _in_review(status: str) -> bool:
    return status.isdigit() and int(status) in REVIEW


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
    linked = sum(n for s, n in status.items() if _linked(s))
    by: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    bins = [0] * 10
    for p in predictions:
        prob = float(p["match_probability"] or 0)
        bins[min(int(prob * 10), 9)] += 1
        ok = int(_linked(p["status"]))
        if incoming and p["incoming_id"] in incoming:
            row = incoming[p["incoming_id"]]
            groups = {
                "sex": row.get("sex") or "unknown",
                "age_band": age_band(row.get("date_of_birth", ""), today),
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
        "review_queue": sum(n for s, n in status.items() if _in_review(s)),
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
            p["incoming_id"]: p["spine_id"] if _linked(p["status"]) else "" for p in predictions
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
    path = out / "report.html"
    path.write_text(render(TEMPLATES, "link_report.html", rep=rep), encoding="utf-8")
    return path
