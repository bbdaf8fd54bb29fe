"""Extract-level disclosure control: k-anonymity on the quasi-identifiers, and a join guard.

Every combination of quasi-identifier values (for example week of birth, sex and LSOA) must
be shared by at least ``k`` rows of the extract. Rows in smaller classes either get their
quasi-identifiers suppressed, the least important first, until their class is big enough
(rows still too rare are dropped), or the extract is refused. Either way a report says what
was done, in counts only.

The join guard (``protect_table``) applies the same rule, with a smaller ``join_k``, to the
whole content of a row: every column but the record and person pseudonyms. Two projects
given the same rows get the same content, so a row whose content is unique in one extract is
unique in the other too and joins them, whatever their pseudonyms; with every content
combination shared by ``join_k`` rows or more, no row can be matched one to one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["KAnonymityMode", "KAnonymityReport", "enforce_k_anonymity", "protect_table"]


class KAnonymityMode(StrEnum):
    SUPPRESS = "suppress"
    REFUSE = "refuse"


@dataclass(slots=True)
class KAnonymityReport:
    """What k-anonymity did to an extract: counts only, never values."""

    k: int
    quasi_identifiers: list[str]
    mode: str
    rows_in: int
    rows_out: int = 0
    rows_dropped: int = 0
    classes_below_k: int = 0
    rows_below_k: int = 0
    smallest_class_before: int | None = None
    smallest_class_after: int | None = None
    values_suppressed: dict[str, int] = field(default_factory=dict)
    refused: bool = False
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "quasi_identifiers": list(self.quasi_identifiers),
            "mode": self.mode,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_dropped": self.rows_dropped,
            "classes_below_k": self.classes_below_k,
            "rows_below_k": self.rows_below_k,
            "smallest_class_before": self.smallest_class_before,
            "smallest_class_after": self.smallest_class_after,
            "values_suppressed": dict(self.values_suppressed),
            "refused": self.refused,
            "reason": self.reason,
        }


def enforce_k_anonymity(
    columns: MutableMapping[str, list[Any]],
    quasi_identifiers: Sequence[str],
    *,
    k: int = 10,
    mode: KAnonymityMode = KAnonymityMode.SUPPRESS,
    max_suppressed_fraction: float | None = None,
) -> KAnonymityReport:
    """Make ``columns`` (equal-length lists, changed in place) k-anonymous, or refuse.

    ``quasi_identifiers`` is ordered most important first: the last one is suppressed first.
    Each must be a column of ``columns``: a name that is not is an error, never skipped (a
    silently skipped name once let a project switch k-anonymity off). The caller chooses
    which of a pinned set a table carries (``extracts.build_extract``).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    qis = list(dict.fromkeys(quasi_identifiers))
    missing = [q for q in qis if q not in columns]
    if missing:
        raise ValueError(f"quasi-identifiers that are not columns of the table: {missing}")
    n = len(next(iter(columns.values()))) if columns else 0
    report = KAnonymityReport(k=k, quasi_identifiers=qis, mode=mode.value, rows_in=n)
    if n == 0 or not qis or k == 1:
        report.rows_out = n
        report.smallest_class_before = report.smallest_class_after = (
            _smallest(Counter(zip(*(columns[q] for q in qis), strict=True))) if qis and n else None
        )
        return report

    keys = list(zip(*(columns[q] for q in qis), strict=True))
    counts = Counter(keys)
    report.smallest_class_before = _smallest(counts)
    report.classes_below_k = sum(1 for c in counts.values() if c < k)
    offending = [i for i, key in enumerate(keys) if counts[key] < k]
    report.rows_below_k = len(offending)

    if mode is KAnonymityMode.REFUSE:
        if offending:
            report.refused = True
            report.reason = (
                f"{report.classes_below_k} quasi-identifier classes have fewer than {k} rows"
            )
            return report
        report.rows_out = n
        report.smallest_class_after = report.smallest_class_before
        return report

    suppressed = {q: 0 for q in qis}
    for position in range(len(qis) - 1, -1, -1):
        if not offending:
            break
        qi = qis[position]
        column = columns[qi]
        for i in offending:
            if keys[i][position] is not None:
                suppressed[qi] += 1
            column[i] = None
            key = list(keys[i])
            key[position] = None
            keys[i] = tuple(key)
        counts = Counter(keys)
        offending = [i for i in offending if counts[keys[i]] < k]

    dropped = set(offending)
    if dropped:
        for name, values in columns.items():
            columns[name] = [v for i, v in enumerate(values) if i not in dropped]
        keys = [key for i, key in enumerate(keys) if i not in dropped]
    report.values_suppressed = suppressed
    report.rows_dropped = len(dropped)
    report.rows_out = n - len(dropped)
    report.smallest_class_after = _smallest(Counter(keys))
    total_changed = report.rows_below_k
    if max_suppressed_fraction is not None and total_changed > max_suppressed_fraction * n:
        report.refused = True
        report.reason = (
            f"suppression would touch {total_changed} of {n} rows, more than the allowed "
            f"fraction {max_suppressed_fraction}"
        )
    return report


def protect_table(
    columns: MutableMapping[str, list[Any]],
    quasi_identifiers: Sequence[str],
    content: Sequence[str],
    *,
    k: int = 10,
    join_k: int = 3,
    mode: KAnonymityMode = KAnonymityMode.SUPPRESS,
    max_suppressed_fraction: float | None = None,
) -> tuple[KAnonymityReport, KAnonymityReport | None]:
    """k-anonymity on ``quasi_identifiers``, then the join guard on ``content`` (every
    column two projects would share, most important first), until both hold.

    Blanking a value for the join guard moves its row to another quasi-identifier class, and
    dropping a row shrinks one, so the two passes alternate until neither changes anything
    (each pass that changes something blanks a value or drops a row: it ends). Returns the
    k-anonymity report (its counts summed over the passes) and the join guard's (None when
    k-anonymity already refused the extract).
    """
    qi_report = enforce_k_anonymity(
        columns, quasi_identifiers, k=k, mode=mode, max_suppressed_fraction=max_suppressed_fraction
    )
    if qi_report.refused:
        return qi_report, None
    join_report = enforce_k_anonymity(columns, content, k=join_k, mode=mode)
    if join_report.refused:
        join_report.reason = f"content alone would single out rows: {join_report.reason}"
        return qi_report, join_report
    again = join_report
    while again.rows_below_k:
        repaired = enforce_k_anonymity(columns, quasi_identifiers, k=k, mode=mode)
        _add(qi_report, repaired)
        if not repaired.rows_below_k:
            break
        again = enforce_k_anonymity(columns, content, k=join_k, mode=mode)
        _add(join_report, again)
    n = len(next(iter(columns.values()))) if columns else 0
    for report, names in ((qi_report, quasi_identifiers), (join_report, content)):
        report.rows_out = n
        report.rows_dropped = report.rows_in - n
        report.smallest_class_after = (
            _smallest(Counter(zip(*(columns[q] for q in names), strict=True)))
            if names and n
            else None
        )
    return qi_report, join_report


def _add(total: KAnonymityReport, more: KAnonymityReport) -> None:
    """Count a repair pass's suppressions into ``total`` (its classes stay the first pass's)."""
    for name, count in more.values_suppressed.items():
        total.values_suppressed[name] = total.values_suppressed.get(name, 0) + count


def _smallest(counts: Counter[Any]) -> int | None:
    return min(counts.values()) if counts else None
