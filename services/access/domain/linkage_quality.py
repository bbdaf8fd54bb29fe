"""How well an extract's people are linked to the spine: link rates by group, share unlinked.

Researchers need this to judge bias: unlinked people are often the most vulnerable (DOMAIN.md),
so a result that leans on linked records may not speak for everyone. Counts only, from the
extract's own (already k-anonymous) rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["GROUPINGS", "PERSON_DATASETS", "linkage_summary"]

PERSON_DATASETS = frozenset({"child", "adult-party"})
"""Datasets whose rows are people linked to the spine (a case or a hearing is not a person,
though every table carries the linkage columns)."""

GROUPINGS: tuple[tuple[str, str], ...] = (
    ("GNDR_CD", "sex (gender code)"),
    ("ALF_STS_CD", "how the link was made (status code)"),
)
"""The columns rates are broken down by, where a table carries them."""


def _rate(linked: int, rows: int) -> float | None:
    return round(linked / rows, 4) if rows else None


def linkage_summary(columns: Mapping[str, Sequence[Any]]) -> dict[str, Any] | None:
    """The table's link rate overall and per group; None for a table without ``ALF_E``."""
    alfs = columns.get("ALF_E")
    if alfs is None:
        return None
    rows = len(alfs)
    linked = sum(1 for a in alfs if a)
    out: dict[str, Any] = {
        "rows": rows,
        "linked": linked,
        "unlinked": rows - linked,
        "link_rate": _rate(linked, rows),
        "share_unlinked": _rate(rows - linked, rows),
        "by": {},
    }
    for column, label in GROUPINGS:
        values = columns.get(column)
        if values is None:
            continue
        totals: Counter[str] = Counter()
        hits: Counter[str] = Counter()
        for value, alf in zip(values, alfs, strict=True):
            key = "missing" if value is None else str(value)
            totals[key] += 1
            hits[key] += 1 if alf else 0
        out["by"][column] = {
            "label": label,
            "groups": [
                {
                    "group": key,
                    "rows": totals[key],
                    "linked": hits[key],
                    "link_rate": _rate(hits[key], totals[key]),
                }
                for key in sorted(totals)
            ],
        }
    return out
