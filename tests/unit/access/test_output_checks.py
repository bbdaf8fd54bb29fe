"""Output checks: presets on aggregate tables, totals and secondary suppression (worked)."""

from __future__ import annotations

import pytest

from services.access.domain.output_checks import Cell, TableKind, check_table

F = TableKind.FREQUENCY
M = TableKind.MAGNITUDE


def values(checked, *, totals: bool = False) -> dict[tuple[str, str | None], object]:
    cells = checked.totals if totals else checked.cells
    return {(c.row, c.col): c.published for c in cells}


def test_threshold_10_suppresses_small_cells_and_zeros() -> None:
    cells = [Cell("a", None, 25), Cell("b", None, 9), Cell("c", None, 0), Cell("d", None, 40)]
    checked = check_table(cells, kind=F, preset="threshold-10")
    v = values(checked)
    assert v[("a", None)] == 25 and v[("d", None)] == 40
    assert v[("b", None)] is None and v[("c", None)] is None
    assert checked.summary["primary_suppressed"] == 2
    # Two hidden cells: the grand total (74) cannot reveal either on its own.
    assert values(checked, totals=True)[("Total", None)] == 74
    assert checked.summary["secondary_suppressed"] == 0


def test_a_single_hidden_cell_forces_a_second_one_so_the_total_cannot_reveal_it() -> None:
    # Worked example: 25 + 5 + 40 = 70. Publishing 25, 40 and 70 would reveal 5.
    cells = [Cell("a", None, 25), Cell("b", None, 5), Cell("c", None, 40)]
    checked = check_table(cells, kind=F, preset="threshold-10")
    v = values(checked)
    assert v[("b", None)] is None
    assert v[("a", None)] is None  # the smallest visible cell is hidden as well
    assert v[("c", None)] == 40
    assert checked.summary["secondary_suppressed"] == 1
    a = next(c for c in checked.cells if c.row == "a")
    assert any(r.startswith("secondary") for r in a.reasons)


def test_two_way_table_secondary_suppression_protects_rows_and_columns() -> None:
    #            f    m   | total
    # 2018      30    4   |  34
    # 2019      25   50   |  75
    cells = [
        Cell("2018", "f", 30),
        Cell("2018", "m", 4),
        Cell("2019", "f", 25),
        Cell("2019", "m", 50),
    ]
    checked = check_table(cells, kind=F, preset="threshold-10")
    v = values(checked)
    hidden = {k for k, val in v.items() if val is None}
    # 4 is primary; its row then needs one more hidden (30), and the columns need one more
    # each (25 and 50): all four are hidden, every line has two or none.
    assert ("2018", "m") in hidden
    for row in ("2018", "2019"):
        n = sum(1 for k in hidden if k[0] == row)
        assert n != 1
    for col in ("f", "m"):
        n = sum(1 for k in hidden if k[1] == col)
        assert n != 1
    totals = values(checked, totals=True)
    assert totals[("Total", None)] == 109


def test_dominance_1_50_and_2_67_on_magnitude_tables() -> None:
    cells = [
        # 20 firms, one holds 60 % of the total: (1, 50) fails.
        Cell("a", None, 20, value=1000.0, top=(600.0, 50.0)),
        # two hold 70 %: (2, 67) fails.
        Cell("b", None, 20, value=1000.0, top=(400.0, 300.0)),
        # balanced
        Cell("c", None, 20, value=1000.0, top=(100.0, 90.0)),
        Cell("d", None, 20, value=2000.0, top=(150.0, 100.0)),
    ]
    checked = check_table(cells, kind=M, preset="threshold-10")
    by_row = {c.row: c for c in checked.cells}
    assert any("top 1" in r for r in by_row["a"].reasons)
    assert any("top 2" in r for r in by_row["b"].reasons)
    assert by_row["c"].published == 1000.0 and by_row["d"].published == 2000.0


def test_acro_p_ratio_and_n_k_rules() -> None:
    cells = [
        # top two hold 95 % > 90 %: N-K fails; remainder 50 < 10 % of 600: p-ratio fails.
        Cell("a", None, 12, value=1000.0, top=(600.0, 350.0)),
        Cell("b", None, 12, value=1000.0, top=(200.0, 100.0)),
        Cell("c", None, 12, value=1000.0, top=(200.0, 100.0)),
        Cell("z", None, 0, value=0.0),
    ]
    checked = check_table(cells, kind=M, preset="acro")
    a = next(c for c in checked.cells if c.row == "a")
    assert any("top 2" in r for r in a.reasons) and any("p-ratio" in r for r in a.reasons)
    z = next(c for c in checked.cells if c.row == "z")
    assert z.published == 0.0  # zeros are flagged for the checker, not suppressed
    assert checked.summary["zeros_flagged"] == 1


def test_opensafely_redacts_seven_or_fewer_then_rounds_to_five() -> None:
    cells = [Cell("a", None, 7), Cell("b", None, 8), Cell("c", None, 12), Cell("d", None, 103)]
    checked = check_table(cells, kind=F, preset="opensafely")
    v = values(checked)
    assert v[("a", None)] is None
    assert v[("b", None)] is None  # secondary: the only other way to hide a from the total
    assert v[("c", None)] == 10
    assert v[("d", None)] == 105
    # The total (130) is rounded too: 130.
    assert values(checked, totals=True)[("Total", None)] == 130
    assert checked.outcome == "modified"


def test_a_clean_table_passes_unchanged() -> None:
    checked = check_table([Cell("a", None, 20), Cell("b", None, 30)], kind=F, preset="threshold-10")
    assert checked.outcome == "pass"
    assert values(checked) == {("a", None): 20, ("b", None): 30}


def test_malformed_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="once"):
        check_table([Cell("a", None, 20), Cell("a", None, 30)], kind=F, preset="threshold-10")
    with pytest.raises(ValueError, match="column"):
        check_table([Cell("a", "x", 20), Cell("b", None, 30)], kind=F, preset="threshold-10")
