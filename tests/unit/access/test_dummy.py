"""Dummy data: an extract's schema with made-up values from the catalogue's value sets."""

from __future__ import annotations

from datetime import date

from services.access.domain.catalogue import CATALOGUE
from services.access.domain.dummy import DummyColumn, dummy_table
from services.access.domain.generalisation import DatePrecision

CHILD = [
    DummyColumn("ALF_E", "string", True),
    DummyColumn("SYSTEM_ID_E", "string", True),
    DummyColumn("CASE_ID_E", "string", True),
    DummyColumn("WOB", "date", False),
    DummyColumn("GNDR_CD", "integer", False),
    DummyColumn("ETHNICITY", "string", False),
    DummyColumn("LA_CD_E", "string", True),
]
CASE = [DummyColumn("SYSTEM_ID_E", "string", True), DummyColumn("LAW_TYPE", "string", False)]
WINDOW = (date(2015, 1, 1), date(2019, 12, 31))


def _table(dataset: str, columns: list[DummyColumn], seed: str = "p|e") -> dict[str, list]:
    return dummy_table(
        dataset, columns, 200, seed=seed, window=WINDOW, precision=DatePrecision.MONTH
    )


def test_dummy_tables_have_the_schema_and_draw_codes_from_their_value_sets() -> None:
    child = _table("child", CHILD)
    assert list(child) == [c.name for c in CHILD] and all(len(v) == 200 for v in child.values())
    ethnicity = next(v for v in CATALOGUE["child"].variables if v.name == "ETHNICITY")
    assert ethnicity.values and set(child["ETHNICITY"]) <= set(ethnicity.values)
    assert set(child["GNDR_CD"]) <= {1, 2, 8, 9}
    assert all(d.day == 1 and d <= WINDOW[1] for d in child["WOB"])
    case = _table("case", CASE)
    assert set(case["LAW_TYPE"]) <= {"public", "private"} and len(set(case["LAW_TYPE"])) == 2


def test_pseudonyms_are_dummy_tokens_that_still_join_across_tables() -> None:
    child, case = _table("child", CHILD), _table("case", CASE)
    tokens = [v for c in CHILD if c.pseudonym for v in child[c.name] if v is not None]
    assert tokens and all(t.startswith("DUMMY-") for t in tokens)
    assert len(set(case["SYSTEM_ID_E"])) == 200  # one row per case
    assert set(child["CASE_ID_E"]) <= set(case["SYSTEM_ID_E"])  # children join their cases
    assert len(set(child["LA_CD_E"])) <= 6  # a few organisations, like the real ones


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    assert _table("child", CHILD) == _table("child", CHILD)
    assert _table("child", CHILD)["ALF_E"] != _table("child", CHILD, seed="q|e")["ALF_E"]
