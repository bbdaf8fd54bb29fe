"""k-anonymity on the declared quasi-identifiers, with worked examples."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from services.access.domain.kanonymity import KAnonymityMode, enforce_k_anonymity, protect_table

QIS = ("GNDR_CD", "WOB", "LSOA_CD")  # most important first: LSOA goes first


def table(rows: list[tuple[Any, Any, Any]]) -> dict[str, list[Any]]:
    return {
        "ALF_E": [f"p{i}" for i in range(len(rows))],
        "GNDR_CD": [r[0] for r in rows],
        "WOB": [r[1] for r in rows],
        "LSOA_CD": [r[2] for r in rows],
    }


def classes(cols: dict[str, list[Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(zip(cols["GNDR_CD"], cols["WOB"], cols["LSOA_CD"], strict=True))


def test_a_table_that_is_already_k_anonymous_is_left_alone() -> None:
    cols = table([(1, "2019-01-07", "W01")] * 3 + [(2, "2019-01-07", "W01")] * 3)
    report = enforce_k_anonymity(cols, QIS, k=3)
    assert report.rows_out == 6 and report.rows_dropped == 0
    assert report.values_suppressed == {} or sum(report.values_suppressed.values()) == 0
    assert report.smallest_class_before == 3


def test_worked_example_lsoa_is_suppressed_first_then_week_of_birth() -> None:
    # k = 3. Six girls born the same week spread over two areas (4 + 2), one boy alone.
    rows = [(2, "2019-01-07", "W01")] * 4 + [(2, "2019-01-07", "W02")] * 2
    rows += [(1, "2019-02-04", "W03")]
    cols = table(rows)
    report = enforce_k_anonymity(cols, QIS, k=3)
    # The two girls in W02 (class of 2) and the boy (class of 1) are below k. LSOA goes:
    # (2, wk1, -) has 2 and (1, wk5, -) has 1, still rare. WOB goes: (2, -, -) has 2 and
    # (1, -, -) has 1. Sex goes: (-, -, -) now holds all three, which is enough; nothing is
    # dropped, and the four girls of W01 keep every value.
    assert report.classes_below_k == 2
    assert report.rows_below_k == 3
    assert report.values_suppressed == {"GNDR_CD": 3, "WOB": 3, "LSOA_CD": 3}
    assert report.rows_dropped == 0
    assert report.rows_out == 7
    assert cols["LSOA_CD"][:4] == ["W01"] * 4
    assert min(classes(cols).values()) >= 3


def test_rows_still_rare_after_every_quasi_identifier_is_suppressed_are_dropped() -> None:
    # k = 3: one rare row alone cannot hide even with all quasi-identifiers blank.
    cols = table([(2, "2019-01-07", "W01")] * 3 + [(1, "2019-02-04", "W03")])
    report = enforce_k_anonymity(cols, QIS, k=3)
    assert report.rows_dropped == 1
    assert report.rows_out == 3
    assert cols["ALF_E"] == ["p0", "p1", "p2"]


def test_suppression_saves_rows_when_a_coarser_class_is_big_enough() -> None:
    # k = 3: three girls of one week in three different areas are fine once LSOA goes.
    rows = [(2, "2019-01-07", f"W0{i}") for i in range(3)] + [(1, "2019-01-07", "W09")] * 3
    cols = table(rows)
    report = enforce_k_anonymity(cols, QIS, k=3)
    assert report.rows_dropped == 0
    assert report.values_suppressed == {"GNDR_CD": 0, "WOB": 0, "LSOA_CD": 3}
    assert cols["LSOA_CD"][:3] == [None, None, None]
    assert cols["WOB"][:3] == ["2019-01-07"] * 3
    assert min(classes(cols).values()) >= 3


def test_refuse_mode_refuses_instead_of_changing_anything() -> None:
    cols = table([(1, "2019-01-07", "W01")] * 9 + [(2, "2019-01-07", "W01")])
    before = {k: list(v) for k, v in cols.items()}
    report = enforce_k_anonymity(cols, QIS, k=10, mode=KAnonymityMode.REFUSE)
    assert report.refused
    assert "fewer than 10" in (report.reason or "")
    assert cols == before


def test_too_much_suppression_is_refused_when_a_limit_is_set() -> None:
    cols = table([(i % 2, f"2019-01-{i:02d}", f"W{i}") for i in range(1, 21)])
    report = enforce_k_anonymity(cols, QIS, k=10, max_suppressed_fraction=0.5)
    assert report.refused
    assert report.rows_below_k == 20


def test_a_quasi_identifier_that_is_not_a_column_is_an_error_never_skipped() -> None:
    # Skipping it silently let a project declare ["NOT_A_COLUMN"] and get no protection.
    cols = {"ALF_E": ["a", "b"], "GNDR_CD": [1, 1]}
    with pytest.raises(ValueError, match="not columns"):
        enforce_k_anonymity(cols, QIS, k=2)
    report = enforce_k_anonymity(cols, ["GNDR_CD"], k=2)
    assert report.quasi_identifiers == ["GNDR_CD"]
    assert report.rows_out == 2


def test_the_join_guard_blanks_content_that_would_single_a_row_out() -> None:
    # k = 3 on sex; join guard 2 on the whole content (sex, then the hearing outcome). Every
    # sex class is big enough, but one girl's outcome is unique: two projects given these
    # rows would both hold that one row, and match it. Her outcome goes (one other girl has
    # none recorded, so the two now look alike); her sex, and everyone else's values, stay.
    cols: dict[str, list[Any]] = {
        "ALF_E": [f"p{i}" for i in range(7)],
        "GNDR_CD": [2, 2, 2, 2, 1, 1, 1],
        "OUTCOME": ["order", "order", "refused", None, "order", "order", "order"],
    }
    qi, join = protect_table(cols, ["GNDR_CD"], ["GNDR_CD", "OUTCOME"], k=3, join_k=2)
    assert join is not None and join.rows_below_k == 2  # her row and the one without
    assert cols["OUTCOME"] == ["order", "order", None, None, "order", "order", "order"]
    assert cols["GNDR_CD"] == [2, 2, 2, 2, 1, 1, 1]
    assert join.values_suppressed == {"GNDR_CD": 0, "OUTCOME": 1}
    assert qi.rows_dropped == join.rows_dropped == 0
    assert join.smallest_class_after == 2 and qi.smallest_class_after == 3


def test_after_the_join_guard_the_quasi_identifier_classes_are_still_k_anonymous() -> None:
    # k = 2 on sex, join guard 2 on (outcome, sex): the unique content (1, "x") blanks the
    # outcome first, still unique, then sex, which leaves a sex class (None) of one row; the
    # repair pass must bring it back to k (here by dropping it: nothing is left to blank).
    cols: dict[str, list[Any]] = {
        "ALF_E": ["a", "b", "c", "d", "e"],
        "GNDR_CD": [1, 1, 2, 2, 1],
        "OUTCOME": ["o", "o", "o", "o", "x"],
    }
    qi, join = protect_table(cols, ["GNDR_CD"], ["OUTCOME", "GNDR_CD"], k=2, join_k=2)
    assert join is not None
    sexes = Counter(cols["GNDR_CD"])
    content = Counter(zip(cols["OUTCOME"], cols["GNDR_CD"], strict=True))
    assert min(sexes.values()) >= 2 and min(content.values()) >= 2
    assert cols["ALF_E"] == ["a", "b", "c", "d"]
    assert qi.rows_out == join.rows_out == 4


def test_refuse_mode_refuses_content_that_would_single_a_row_out() -> None:
    cols: dict[str, list[Any]] = {"GNDR_CD": [1] * 4, "OUTCOME": ["o", "o", "o", "x"]}
    qi, join = protect_table(
        cols, ["GNDR_CD"], ["GNDR_CD", "OUTCOME"], k=2, join_k=2, mode=KAnonymityMode.REFUSE
    )
    assert not qi.refused
    assert join is not None and join.refused and "content alone" in (join.reason or "")
