"""The demo's evaluation (linkage against the ground truth, leak scan) and its HTML report.

How the evaluation joins results to the truth without identifiers crossing the boundary:
the demo pushed every record under a record id it knows, and pseudonymise's record token is
``Pseudonymiser.record_token(source, record_type, record_id)`` under the master key. For a
local demo the evaluation loads the dev master key that pseudonymise generated in the
stack's key folder (exactly as pseudonymise loads it) and computes the token of every
record of the world; then it reads the research store's link decisions by token. A real
deployment never does this: nobody outside pseudonymise holds the key.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.synth.generator import REFERENCE_DATE
from fjo.demo.stack import EmbeddedStack
from fjo.demo.world import World, load_postcode_lookup

__all__ = ["evaluate", "leak_check", "world_identifiers", "write_report"]

PERSON_TYPES = ("child", "adult-party")
_EARLIEST_CONTENT_DATE = date(2011, 1, 1)


# ------------------------------------------------------------------------------- evaluation


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        return list(conn.execute(sql))
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _age_band(dob: date) -> str:
    age = (REFERENCE_DATE - dob).days / 365.25
    for limit, label in ((1, "0"), (5, "1-4"), (11, "5-10"), (18, "11-17"), (30, "18-29")):
        if age < limit:
            return label
    return "30-44" if age < 45 else "45+"


def record_tokens(world: World, stack: EmbeddedStack) -> dict[tuple[str, str, str], str]:
    """(source, record_type, record_id) -> record token, with pseudonymise's dev master key."""
    from services.pseudonymise.bootstrap import build_pseudonymiser
    from services.pseudonymise.config import PseudonymiseSettings

    # Explicit values win over any FJO_PSEUDONYMISE_* in the caller's environment.
    settings = PseudonymiseSettings(
        environment="dev",
        dev_key_dir=stack.key_dir,
        master_key_files={},
        current_key_version=None,
        retired_key_versions=(),
    )
    pseudonymiser = build_pseudonymiser(settings)
    return {
        (source, kind, row["record_id"]): pseudonymiser.record_token(source, kind, row["record_id"])
        for (source, kind), rows in world.records.items()
        for row in rows
    }


def evaluate(world: World, stack: EmbeddedStack, *, link_running: bool) -> dict[str, Any]:
    """Reconciliation (every accepted record in the research store) and linkage quality."""
    tokens = record_tokens(world, stack)
    access_db = stack.database("access")
    stored = {
        r[0]: r
        for r in _rows(access_db, "SELECT record_token, record_type FROM access_research_records")
    }
    decisions = {
        r[0]: (r[1], int(r[2]), float(r[3]))
        for r in _rows(
            access_db,
            "SELECT record_token, alf, status_code, match_probability FROM access_link_decisions",
        )
    }
    missing = Counter(f"{s}/{k}" for (s, k, _i), tok in tokens.items() if tok not in stored)
    out: dict[str, Any] = {
        "records_expected": len(tokens),
        "records_in_research_store": sum(1 for tok in tokens.values() if tok in stored),
        "research_store_rows": len(stored),
        "missing_by_feed": dict(missing),
        "link_running": link_running,
        "link_decisions": len(decisions),
    }
    if not decisions:
        return out

    # Which spine person an ALF stands for: from spine records' own decisions (their ALF),
    # else from link's own table (the matched spine record's token).
    spine_by_token = {tok: rid for (s, k, rid), tok in tokens.items() if k == "spine-person"}
    spine_of_alf: dict[str, str] = {}
    for tok, (alf, _status, _p) in decisions.items():
        if alf and tok in spine_by_token:
            spine_of_alf[alf] = spine_by_token[tok]
    link_spine = {
        r[0]: spine_by_token.get(r[1] or "", "")
        for r in _rows(stack.database("link"), "SELECT record_token, spine_token FROM link_results")
    }

    people = world.people
    lookup = load_postcode_lookup()
    from fjo.demo.world import _authority_names

    la_names = _authority_names()
    truth = {(t.source, t.record_type, t.record_id): t for t in world.truth}
    tp = fp = fn = linked_total = n = 0
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    scores: dict[str, list[float]] = {"true match on spine": [], "not on spine": []}
    statuses: Counter[str] = Counter()
    undecided = 0
    for key, t in truth.items():
        if t.record_type not in PERSON_TYPES:
            continue
        tok = tokens[key]
        if tok not in decisions:
            undecided += 1
            continue
        n += 1
        alf, status, prob = decisions[tok]
        statuses[str(status)] += 1
        predicted = ""
        if alf:
            predicted = spine_of_alf.get(alf) or link_spine.get(tok, "")
        linked = alf is not None
        linked_total += linked
        if linked and predicted and predicted == t.spine_id:
            tp += 1
        elif linked:
            fp += 1
        if t.spine_id and not (linked and predicted == t.spine_id):
            fn += 1
        scores["true match on spine" if t.spine_id else "not on spine"].append(prob)
        p = people[t.person_id]
        la = lookup.get(p.addresses[-1][0], ("", ""))[1]
        for group, value in (
            ("source", t.source),
            ("record type", t.record_type),
            ("sex", {"M": "male", "F": "female"}.get(p.sex, p.sex)),
            ("age band", _age_band(p.dob)),
            ("local authority", la_names.get(la, la or "unknown")),
            ("on the spine (truth)", "yes" if t.spine_id else "no"),
        ):
            cell = groups[group][value]
            cell[0] += 1
            cell[1] += linked
    precision = tp / linked_total if linked_total else 0.0
    on_spine = sum(1 for t in truth.values() if t.record_type in PERSON_TYPES and t.spine_id)
    recall = tp / on_spine if on_spine else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out.update(
        {
            "person_records": n,
            "person_records_without_decision": undecided,
            "linked": linked_total,
            "link_rate": linked_total / n if n else 0.0,
            "true_positives": tp,
            "false_positives": fp,
            "false_negatives": fn,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "statuses": dict(sorted(statuses.items())),
            "rates_by_group": {
                g: {
                    v: {"records": c[0], "linked": c[1], "rate": c[1] / c[0]}
                    for v, c in sorted(vals.items())
                }
                for g, vals in groups.items()
            },
            "scores": {k: _histogram(v) for k, v in scores.items()},
        }
    )
    return out


def _histogram(values: Iterable[float], bins: int = 10) -> list[int]:
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    return counts


# -------------------------------------------------------------------------------- leak check


def world_identifiers(world: World) -> tuple[set[str], set[str], int]:
    """Identifier values of every record and invalid line of the world, for the leak scan.

    Returns (canaries, hashed-only canaries, values too short to scan). Values that cannot
    be told apart in clear from what research keeps by design are looked for only encoded
    and as unkeyed hashes: dates of birth that are Mondays (a week of birth) or fall in the
    years of cases and hearings, and names made only of words that also occur in the
    records' content (the surname Foster and the living situation ``foster-care``).
    """
    from contracts.identifiers import IdentifierKind, identifier_field_kinds
    from contracts.records import RECORD_MODELS, RecordType
    from fjo.leakscan import MIN_CANARY_LENGTH

    canaries: set[str] = set()
    hashed: set[str] = set()
    short = 0
    content_words: set[str] = set()

    def add(value: Any, kind: IdentifierKind) -> None:
        nonlocal short
        if isinstance(value, list | tuple):
            for v in value:
                add(v, kind)
            return
        if isinstance(value, dict):
            # An address period's from/to dates are not identifiers; its address is.
            for k, v in value.items():
                if not k.endswith("_date"):
                    add(v, kind)
            return
        if not isinstance(value, str) or not value.strip():
            return
        if len(value.strip()) < MIN_CANARY_LENGTH:
            short += 1
            return
        if kind is IdentifierKind.DATE_OF_BIRTH or kind is IdentifierKind.DATE_OF_DEATH:
            try:
                d = date.fromisoformat(value)
            except ValueError:
                canaries.add(value)
                return
            if d.weekday() != 0 and d < _EARLIEST_CONTENT_DATE:
                canaries.add(value)
            else:
                hashed.add(value)
            return
        if kind is IdentifierKind.NAME:
            names.add(value)
            return
        canaries.add(value)

    names: set[str] = set()

    def walk(record: Mapping[str, Any], kinds: Mapping[str, IdentifierKind]) -> None:
        for path, kind in kinds.items():
            values: list[Any] = [record]
            for part in path.split("."):
                nxt: list[Any] = []
                for v in values:
                    if isinstance(v, list | tuple):
                        nxt.extend(x.get(part) for x in v if isinstance(x, dict))
                    elif isinstance(v, dict):
                        nxt.append(v.get(part))
                values = nxt
            for v in values:
                add(v, kind)

    for (_source, kind), rows in world.records.items():
        kinds = identifier_field_kinds(RECORD_MODELS[RecordType(kind)])
        top = {path.split(".")[0] for path in kinds}
        for row in rows:
            walk(row, kinds)
            for key, value in row.items():
                if key not in top:
                    content_words.update(_words(json.dumps(value)))
    for line in world.invalid:
        try:
            row = json.loads(line.line)
        except ValueError:
            continue
        if isinstance(row, dict):
            walk(row, identifier_field_kinds(RECORD_MODELS[RecordType(line.record_type)]))
    for name in names:
        words = _words(name)
        (hashed if words and words <= content_words else canaries).add(name)
    return canaries, hashed - canaries, short


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W_]+", text)}


def leak_check(world: World, stack: EmbeddedStack, extract_dir: Path) -> dict[str, Any]:
    """Scan every store, topic, log and file downstream of pseudonymise for the world's
    identifiers (``fjo.leakscan``: clear, encoded, unkeyed hashes)."""
    from fjo.leakscan import LeakScanner

    canaries, hashed, short = world_identifiers(world)
    scanner = LeakScanner(canaries, hashed_only=hashed, bounded_clear=True)
    places: dict[str, dict[str, Any]] = {}

    def scan(name: str, blob: bytes) -> None:
        result = scanner.scan(blob)
        places[name] = {
            "bytes": len(blob),
            "findings": result.findings[:20],
            "finding_count": len(result.findings),
            "chance_hits": result.chance_hits,
        }

    for service in ("link", "access"):
        db = stack.database(service)
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                scan(f"database {path.name}", path.read_bytes())
    from fjo.demo.run import DOWNSTREAM_TOPICS

    bus = sqlite3.connect(f"file:{stack.bus_path}?mode=ro", uri=True, timeout=30.0)
    try:
        for topic in DOWNSTREAM_TOPICS:
            parts: list[bytes] = []
            for key, value, headers in bus.execute(
                "SELECT key, value, headers FROM bus_records WHERE topic = ?", (topic,)
            ):
                parts.extend(b for b in (key, value, headers) if b)
            scan(f"topic {topic} ({len(parts)} parts)", b"\n".join(parts))
    finally:
        bus.close()
    logs = stack.state_dir / "logs"
    for log in sorted(logs.glob("*.log")):
        if log.name.startswith(("link-", "access-")):
            scan(f"log {log.name}", log.read_bytes())
    for f in sorted(extract_dir.glob("*")):
        if f.is_file():
            scan(f"extract {f.name}", f.read_bytes())
    total = sum(p["finding_count"] for p in places.values())
    return {
        "clean": total == 0,
        "findings": total,
        "canaries": len(canaries),
        "hashed_only": len(hashed),
        "too_short_to_scan": short,
        "bytes_scanned": sum(p["bytes"] for p in places.values()),
        "chance_hits": sum(p["chance_hits"] for p in places.values()),
        "places": places,
    }


# ------------------------------------------------------------------------------------ report


def _svg_lines(title: str, series: dict[str, list[tuple[float, float]]]) -> str:
    width, height, left, bottom = 640, 260, 60, 30
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    x_max = max(p[0] for p in points) or 1.0
    y_max = max(p[1] for p in points) or 1.0
    colours = ("#3b6ea5", "#c0504d", "#9bbb59", "#8064a2", "#f79646")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 190}" height="{height + 20}">',
        f'<text x="0" y="14" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"'
        ' stroke="#999"/>',
        f'<line x1="{left}" y1="24" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 4}" y="30" font-size="11" text-anchor="end">{y_max:.0f}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" font-size="11" text-anchor="end">0</text>',
        f'<text x="{width}" y="{height - bottom + 16}" font-size="11" text-anchor="end">'
        f"{x_max:.0f} s</text>",
    ]
    for i, (name, pts) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        coords = " ".join(
            f"{left + (width - left) * x / x_max:.1f},"
            f"{(height - bottom) - (height - bottom - 24) * y / y_max:.1f}"
            for x, y in pts
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        parts.append(
            f'<rect x="{width + 10}" y="{30 + i * 18}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{width + 28}" y="{40 + i * 18}" font-size="12">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars(title: str, data: dict[str, float], fmt: str = "{:.0f}") -> str:
    from services.link.report import _svg_bars  # the link report's inline-SVG bar chart

    return _svg_bars(title, data, fmt)


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


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
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.html").write_text(_html(report, samples), encoding="utf-8")
    return report


def _html(report: dict[str, Any], samples: list[tuple[float, dict[str, int]]]) -> str:
    ev = report["evaluation"]
    leaks = report["leak_check"]
    ex = report["extract"]
    sections: list[str] = []
    verdict = "all checks passed" if report["ok"] else "SOME CHECKS FAILED"
    sections.append(
        f"<p class='verdict {'ok' if report['ok'] else 'bad'}'>{verdict}: receipts reconcile "
        f"{'✓' if report['receipts_reconcile'] else '✗'} · every accepted record in the research "
        f"store {'✓' if ev['records_in_research_store'] == ev['records_expected'] else '✗'} · "
        f"extract hashes match {'✓' if not ex['hash_mismatches'] else '✗'} · leak check "
        f"{'clean ✓' if leaks['clean'] else 'FOUND LEAKS ✗'}</p>"
    )
    for problem in report["problems"]:
        sections.append(f"<p class='bad'>{html.escape(problem)}</p>")
    if report["linkage"] == "missing":
        sections.append(
            "<p class='bad'><b>Linkage is missing:</b> the link service's streaming worker was "
            "not running in this build, so no record was linked and no link quality is shown. "
            "Nothing here is a simulated link result.</p>"
        )

    sections.append("<h2>What the partners sent (receipts)</h2>")
    sections.append(
        _table(
            [
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
            ["feed", "received", "accepted", "rejected", "duplicates", "reconciles", "push s"],
        )
    )
    sections.append(
        "<p>Rejected lines are the world's deliberately invalid ones; they went to the "
        "quarantine topic with their reasons (see <code>report.json</code>).</p>"
    )

    sections.append("<h2>Throughput per stage</h2>")
    stages = sorted({k for _t, c in samples for k in c})
    series = {s: [(t, float(c.get(s, 0))) for t, c in samples] for s in stages}
    sections.append(_svg_lines("Records through each stage over time (cumulative)", series))
    sections.append(
        _table(
            [[s, v["records"], v["seconds"], v["per_s"]] for s, v in report["throughput"].items()],
            ["stage", "records", "busy seconds", "records per busy second"],
        )
    )

    sections.append("<h2>Research store</h2>")
    rs = report["research_store"]
    sections.append(
        f"<p>{rs['present']} of {rs['expected']} accepted records reached the research store "
        f"({ev['research_store_rows']} rows in all); missing by feed: "
        f"{html.escape(json.dumps(rs['missing_by_feed']) or '{}')}.</p>"
    )

    if report["linkage"] == "evaluated":
        sections.append("<h2>Linkage against the ground truth</h2>")
        sections.append(
            _table(
                [
                    ["person records (children, adults)", ev["person_records"]],
                    ["linked (given an ALF)", f"{ev['linked']} ({ev['link_rate']:.1%})"],
                    ["precision", f"{ev['precision']:.3f}"],
                    ["recall", f"{ev['recall']:.3f}"],
                    ["F1", f"{ev['f1']:.3f}"],
                    ["true / false positives", f"{ev['true_positives']} / {ev['false_positives']}"],
                    ["false negatives", ev["false_negatives"]],
                    ["status codes (ALF_STS_CD)", json.dumps(ev["statuses"])],
                ],
                ["measure", "value"],
            )
        )
        sections.append(
            "<p>Truth: the record's true person and spine id from the world; the result: the "
            "research store's current link decision for the record's token, and the spine "
            "person its ALF belongs to.</p>"
        )
        sections.append("<h2>Link rates by group</h2>")
        for group, values in ev["rates_by_group"].items():
            sections.append(
                _bars(
                    f"Share linked by {group}",
                    {f"{k} (n={v['records']})"[:18]: v["rate"] for k, v in values.items()},
                    "{:.0%}",
                )
            )
        sections.append("<h2>Match probability distribution</h2>")
        for label, hist in ev["scores"].items():
            sections.append(
                _bars(
                    f"Match probability: {label}",
                    {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": float(c) for i, c in enumerate(hist)},
                )
            )

    sections.append("<h2>The extract</h2>")
    sections.append(
        f"<p>Project <code>{html.escape(ex['project_id'])}</code> approved by "
        f"{html.escape(ex['approver'])}, extract requested by {html.escape(ex['requested_by'])}: "
        f"{ex['rows']} rows. Files are in <code>extract/</code>; the manifest's SHA-256 "
        f"{'matches every file' if not ex['hash_mismatches'] else 'does NOT match'}.</p>"
    )
    sections.append(
        _table(
            [
                [
                    f.get("name"),
                    f.get("rows", ""),
                    f.get("bytes", ""),
                    str(f.get("sha256", ""))[:16],
                ]
                for f in ex["files"]
            ],
            ["file", "rows", "bytes", "sha256 (prefix)"],
        )
    )
    sections.append(
        f"<pre>{html.escape(json.dumps(ex.get('disclosure', {}), indent=1)[:3000])}</pre>"
    )

    sections.append("<h2>Leak check</h2>")
    sections.append(
        f"<p>{leaks['canaries']} identifier values of the world (names, NHS numbers, addresses, "
        f"postcodes, record ids, case numbers, dates of birth where unambiguous) plus "
        f"{leaks['hashed_only']} dates of birth looked for only encoded or hashed, were looked "
        f"for in clear, base64/hex, and as unkeyed MD5/SHA-1/SHA-256/SHA-512 in "
        f"{leaks['bytes_scanned']:,} bytes downstream of pseudonymise: "
        f"<b>{'clean' if leaks['clean'] else str(leaks['findings']) + ' findings'}</b>. "
        f"{leaks['chance_hits']} clear-text hits inside longer letter/digit runs (such as "
        f"base64 tokens) were counted as chance, not leaks. Names that are also words of the "
        f"records' content (Foster, foster-care) and dates of birth that a week of birth or "
        f"a case date can equal were looked for only encoded and hashed. "
        f"{leaks['too_short_to_scan']} values "
        f"shorter than 6 characters cannot be scanned meaningfully.</p>"
    )
    sections.append(
        _table(
            [
                [
                    name,
                    f"{p['bytes']:,}",
                    p["finding_count"],
                    p["chance_hits"],
                    "; ".join(p["findings"][:3]),
                ]
                for name, p in leaks["places"].items()
            ],
            ["where", "bytes", "findings", "chance hits", "examples"],
        )
    )
    sections.append("<h2>Timings</h2>")
    sections.append(_table([[k, v] for k, v in report["timings_s"].items()], ["step", "seconds"]))

    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:left}.ok{color:#1a7f37}.bad{color:#b42318}"
        "svg{display:block;margin:1em 0}pre{background:#f6f6f6;padding:.5em;font-size:12px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fjo demo report</title>"
        f"<style>{style}</style></head><body><h1>fjo demo: from partners' pushes to a "
        "researcher's extract</h1>" + "".join(sections) + "</body></html>\n"
    )
