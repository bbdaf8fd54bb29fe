"""Safe outputs: automated statistical disclosure checks on aggregate tables.

A researcher submits a one- or two-way table (frequencies, or magnitudes with each cell's
contributor count and largest contributions). A preset decides which cells are unsafe:

- ``threshold-10`` (UK LLC, ONS SRS): fewer than 10 people, zeros included; for magnitudes
  also the (1, 50) and (2, 67) dominance rules (ABS).
- ``acro``: ACRO's defaults: threshold 10, top-2 share above 0.9 (N-K rule), p-ratio 0.1;
  zero cells are flagged for the checker rather than suppressed.
- ``opensafely``: counts of 7 or fewer are redacted, then everything is rounded to the
  nearest 5.

Totals are always recomputed from the submitted cells (never taken from the researcher),
then secondary suppression makes sure no row, column or grand total reveals a suppressed
cell by subtraction: every line (its cells plus its total) has either no hidden entry or at
least two. The checker sees the report; only the protected table can be released.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "PRESETS",
    "Cell",
    "CellResult",
    "CheckedTable",
    "Preset",
    "TableKind",
    "check_table",
]

TOTAL = "Total"


class TableKind(StrEnum):
    FREQUENCY = "frequency"
    MAGNITUDE = "magnitude"


@dataclass(frozen=True, slots=True)
class Preset:
    """One set of output rules."""

    name: str
    threshold: int | None = 10
    """Cells with fewer contributors than this are suppressed."""
    suppress_zeros: bool = True
    dominance: tuple[tuple[int, float], ...] = ()
    """(n, share): the top-n contributors may hold at most ``share`` of the cell's total."""
    p_ratio: float | None = None
    """p% rule: the rest of the cell must exceed ``p_ratio`` of the largest contribution."""
    redact_at_or_below: int | None = None
    round_to: int | None = None
    flag_zeros: bool = False


PRESETS: dict[str, Preset] = {
    "threshold-10": Preset(
        name="threshold-10", threshold=10, suppress_zeros=True, dominance=((1, 0.50), (2, 0.67))
    ),
    "acro": Preset(
        name="acro",
        threshold=10,
        suppress_zeros=False,
        flag_zeros=True,
        dominance=((2, 0.90),),
        p_ratio=0.10,
    ),
    "opensafely": Preset(
        name="opensafely",
        threshold=None,
        suppress_zeros=False,
        redact_at_or_below=7,
        round_to=5,
    ),
}


@dataclass(frozen=True, slots=True)
class Cell:
    """One inner cell: its row (and column) label, its count and, for magnitudes, its sum
    and the largest contributions (largest first)."""

    row: str
    col: str | None
    count: int
    value: float | None = None
    top: tuple[float, ...] = ()


@dataclass(slots=True)
class CellResult:
    row: str
    col: str | None
    published: float | int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def suppressed(self) -> bool:
        return self.published is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "col": self.col,
            "value": self.published,
            "suppressed": self.suppressed,
            "reasons": list(self.reasons),
        }


@dataclass(slots=True)
class CheckedTable:
    """The protected table (inner cells and recomputed totals) with the reasons per cell."""

    preset: str
    kind: TableKind
    cells: list[CellResult]
    totals: list[CellResult]
    summary: dict[str, int]
    outcome: str  # "pass": released as submitted; "modified": cells hidden or rounded

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "kind": self.kind.value,
            "outcome": self.outcome,
            "summary": dict(self.summary),
            "cells": [c.as_dict() for c in self.cells],
            "totals": [c.as_dict() for c in self.totals],
        }


def _primary_reasons(cell: Cell, kind: TableKind, preset: Preset) -> list[str]:
    reasons: list[str] = []
    if cell.count < 0:
        raise ValueError("a cell count cannot be negative")
    if preset.redact_at_or_below is not None and cell.count <= preset.redact_at_or_below:
        reasons.append(f"redacted: count <= {preset.redact_at_or_below}")
    below = preset.threshold is not None and cell.count < preset.threshold
    if below and (cell.count > 0 or preset.suppress_zeros):
        reasons.append(f"threshold: fewer than {preset.threshold}")
    if kind is TableKind.MAGNITUDE and cell.count > 0:
        if cell.value is None:
            raise ValueError("a magnitude cell needs its value")
        total = abs(cell.value)
        top = sorted((abs(t) for t in cell.top), reverse=True)
        if (preset.dominance or preset.p_ratio is not None) and not top:
            reasons.append("dominance: largest contributions not supplied")
        elif total > 0:
            for n, share in preset.dominance:
                if sum(top[:n]) > share * total:
                    reasons.append(f"dominance: top {n} hold more than {share:.0%}")
            if preset.p_ratio is not None:
                rest = total - sum(top[:2])
                if rest < preset.p_ratio * top[0]:
                    reasons.append(f"p-ratio: remainder below {preset.p_ratio:.0%} of largest")
    return reasons


def _round(value: float, base: int | None) -> float | int:
    if base is None:
        return value
    # Half away from zero, as OpenSAFELY's rounding does for counts.
    q = abs(value) / base
    rounded = int(q + 0.5) * base
    return rounded if value >= 0 else -rounded


def check_table(cells: Sequence[Cell], *, kind: TableKind, preset: Preset | str) -> CheckedTable:
    """Apply ``preset`` to the table, recompute totals and add secondary suppression."""
    rules = PRESETS[preset] if isinstance(preset, str) else preset
    if not cells:
        raise ValueError("a table needs at least one cell")
    seen: set[tuple[str, str | None]] = set()
    for c in cells:
        if (c.row, c.col) in seen:
            raise ValueError("each (row, column) may appear once")
        seen.add((c.row, c.col))
    two_way = any(c.col is not None for c in cells)
    if two_way and any(c.col is None for c in cells):
        raise ValueError("either every cell has a column or none does")

    def measure(c: Cell) -> float:
        return float(c.count) if kind is TableKind.FREQUENCY else float(c.value or 0.0)

    results = [
        CellResult(c.row, c.col, measure(c), _primary_reasons(c, kind, rules)) for c in cells
    ]
    flagged_zeros = 0
    for res, c in zip(results, cells, strict=True):
        if rules.flag_zeros and c.count == 0:
            flagged_zeros += 1
        if res.reasons:
            res.published = None
    primary = sum(1 for r in results if r.suppressed)

    # Totals: recomputed from the true cells.
    rows = sorted({c.row for c in cells})
    cols = sorted({c.col for c in cells if c.col is not None})
    true = {(c.row, c.col): measure(c) for c in cells}
    totals: dict[tuple[str, str | None], CellResult] = {}
    if two_way:
        for r in rows:
            totals[(r, TOTAL)] = CellResult(
                r, TOTAL, sum(v for (rr, _), v in true.items() if rr == r)
            )
        for col in cols:
            totals[(TOTAL, col)] = CellResult(
                TOTAL, col, sum(v for (_, cc), v in true.items() if cc == col)
            )
    totals[(TOTAL, None)] = CellResult(TOTAL, None, sum(true.values()))

    # Lines: each is a set of inner cells plus the total they add up to.
    by_key = {(r.row, r.col): r for r in results}
    lines: list[tuple[list[CellResult], CellResult]] = []
    if two_way:
        for r in rows:
            lines.append(([by_key[k] for k in by_key if k[0] == r], totals[(r, TOTAL)]))
        for col in cols:
            lines.append(([by_key[k] for k in by_key if k[1] == col], totals[(TOTAL, col)]))
        # The grand total adds up the row totals, and the column totals.
        lines.append(([totals[(r, TOTAL)] for r in rows], totals[(TOTAL, None)]))
        lines.append(([totals[(TOTAL, col)] for col in cols], totals[(TOTAL, None)]))
    else:
        lines.append((list(results), totals[(TOTAL, None)]))

    secondary = 0
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            hidden = [m for m in members if m.suppressed] + ([total] if total.suppressed else [])
            if len(hidden) != 1:
                continue
            visible = [m for m in members if not m.suppressed]
            if visible:
                # Hide the smallest non-zero visible entry: least information lost, and a
                # hidden zero would add nothing to the uncertainty about the other cell.
                victim = min(
                    visible,
                    key=lambda m: (
                        float(m.published or 0) == 0,
                        abs(float(m.published or 0)),
                        m.row,
                        m.col or "",
                    ),
                )
            else:
                victim = total
            victim.published = None
            victim.reasons.append("secondary: would be revealed by a total")
            secondary += 1
            changed = True

    rounded = 0
    for res in [*results, *totals.values()]:
        if res.published is not None and rules.round_to is not None:
            new = _round(float(res.published), rules.round_to)
            if new != res.published:
                rounded += 1
            res.published = new
        elif res.published is not None and kind is TableKind.FREQUENCY:
            res.published = int(res.published)

    summary = {
        "cells": len(results),
        "primary_suppressed": primary,
        "secondary_suppressed": secondary,
        "rounded": rounded,
        "zeros_flagged": flagged_zeros,
    }
    outcome = "pass" if primary == 0 and secondary == 0 and rounded == 0 else "modified"
    if flagged_zeros:
        outcome = "modified" if outcome == "modified" else "review"
    return CheckedTable(
        preset=rules.name,
        kind=kind,
        cells=results,
        totals=list(totals.values()),
        summary=summary,
        outcome=outcome,
    )
