"""The short terminal summary at the end of ``fjo demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fjo.demo.run import DemoResult

__all__ = ["print_summary", "summary_lines"]


def summary_lines(result: DemoResult) -> list[str]:
    """The summary as plain lines (also what the tests read)."""
    r = result.report
    ev = r["evaluation"]
    leaks = r["leak_check"]
    ex = r["extract"]
    ws = r["workspace"]
    received = sum(x["received"] for x in r["receipts"])
    accepted = sum(x["accepted"] for x in r["receipts"])
    rejected = sum(x["rejected"] for x in r["receipts"])
    duplicates = sum(x["duplicates"] for x in r["receipts"])
    lines = [
        f"fjo demo: {'OK' if r['ok'] else 'FAILED'} in {r['timings_s'].get('total', 0):.0f} s",
        f"  pushed     {received} records in {len(r['receipts'])} feeds: {accepted} accepted, "
        f"{rejected} rejected (quarantined), {duplicates} duplicates; receipts "
        f"{'reconcile' if r['receipts_reconcile'] else 'DO NOT reconcile'}",
        f"  research   {r['research_store']['present']}/{r['research_store']['expected']} "
        "accepted records in the research store",
    ]
    if r["linkage"] == "missing":
        lines.append("  linkage    MISSING: no link worker ran, so nothing was linked or evaluated")
    else:
        lines.append(
            f"  linkage    {ev['linked']}/{ev['person_records']} person records linked "
            f"({ev['link_rate']:.1%}); precision {ev['precision']:.3f}, recall "
            f"{ev['recall']:.3f}, F1 {ev['f1']:.3f}"
        )
    for stage, v in r["throughput"].items():
        lines.append(f"  throughput {stage:<26} {v['per_s']:>8.1f} records/s ({v['records']})")
    lines += [
        f"  extract    {ex['rows']} rows in {len(ex['files'])} files; manifest hashes "
        f"{'match' if not ex['hash_mismatches'] else 'DO NOT match'}",
        f"  workspace  query {ws['query']['rows']} rows; job {ws['job']['state']}; output "
        f"ACRO {ws['output']['status']}, {ws['output']['state']} by "
        f"{', '.join(ws['output']['approvals'])}",
        f"  leak check {'clean' if leaks['clean'] else str(leaks['findings']) + ' FINDINGS'}: "
        f"{leaks['canaries'] + leaks['hashed_only']} identifiers, "
        f"{leaks['bytes_scanned'] / 1e6:.1f} MB of stores, topics, logs and extract",
        f"  report     {result.out / 'report.html'}",
    ]
    lines += [f"  problem    {p}" for p in r.get("problems", [])]
    return lines


def print_summary(result: DemoResult) -> None:
    """Print the summary to the terminal."""
    from rich.console import Console

    console = Console(highlight=False)
    for i, line in enumerate(summary_lines(result)):
        console.print(f"[bold]{line}[/]" if i == 0 else line, soft_wrap=True)
