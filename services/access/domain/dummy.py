"""Dummy data for writing code: tables with an extract's schema and plausible values, drawn
from the data dictionary and the catalogue's value sets alone.

Pure and deterministic (a seed per workspace). No record of the research store is read, so
no real person is behind any row: pseudonyms are ``DUMMY-`` tokens from shared pools (so
that tables still join on ``CASE_ID_E`` and ``ALF_E``), dates fall in the approved window at
the approved precision, codes come from their value sets. Counts and distributions are not
the real ones, on purpose: the dummy data says nothing about the data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.access.domain.catalogue import CATALOGUE, LINKAGE_COLUMNS, Variable
from services.access.domain.generalisation import (
    MATCH_PROBABILITY_BANDS,
    DatePrecision,
    coarsen_date,
)

__all__ = ["DummyColumn", "dummy_table", "variables_by_name"]

_CASE_COLUMNS = {"CASE_ID_E"}
_PERSON_COLUMNS = {"ALF_E"}
_ORGANISATIONS = 6


@dataclass(frozen=True, slots=True)
class DummyColumn:
    """One column of the data dictionary (``data_dictionary.json``)."""

    name: str
    type: str
    pseudonym: bool


def variables_by_name(dataset: str) -> dict[str, Variable]:
    """The catalogue's description of a dataset's columns (linkage columns included)."""
    known = CATALOGUE.get(dataset)
    return {v.name: v for v in (*LINKAGE_COLUMNS, *(known.variables if known else ()))}


def _token(rng: random.Random) -> str:
    return f"DUMMY-{rng.getrandbits(64):016x}"


def dummy_table(
    dataset: str,
    columns: Sequence[DummyColumn],
    rows: int,
    *,
    seed: str,
    window: tuple[date, date],
    precision: DatePrecision,
) -> dict[str, list[Any]]:
    """``rows`` made-up rows of ``dataset`` with exactly ``columns``, the same for a seed."""
    rng = random.Random(f"{seed}|{dataset}")
    pools = random.Random(seed)  # shared by every table of the workspace: joins work
    cases = [_token(pools) for _ in range(max(rows, 1))]  # the case table's own ids: unique
    people = [_token(pools) for _ in range(max(rows, 1))]
    organisations = [_token(pools) for _ in range(_ORGANISATIONS)]
    described = variables_by_name(dataset)
    start, end = window
    span = max((end - start).days, 1)

    def value(column: DummyColumn, row: int) -> Any:
        v = described.get(column.name)
        if column.name == "SYSTEM_ID_E" and dataset == "case":
            return cases[row]
        if column.name in _CASE_COLUMNS:
            return rng.choice(cases)
        if column.name in _PERSON_COLUMNS:
            return None if rng.random() < 0.2 else rng.choice(people)
        if column.pseudonym:
            kind = v.pseudonym.value if v is not None and v.pseudonym is not None else ""
            return rng.choice(organisations) if kind == "organisation" else _token(rng)
        if v is not None and v.values:
            if column.name == "ORDERS_SOUGHT":
                return ";".join(rng.sample([str(x) for x in v.values], k=rng.randint(1, 2)))
            return rng.choice(v.values)
        if column.type == "date":
            if column.name == "WOB":
                born = (
                    start
                    - timedelta(days=rng.randrange(0, 18 * 365))
                    + timedelta(days=rng.randrange(span))
                )
                return coarsen_date(born, precision)
            return coarsen_date(start + timedelta(days=rng.randrange(span)), precision)
        if column.type == "float":
            return rng.choice(MATCH_PROBABILITY_BANDS)
        if column.type == "integer":
            return rng.randrange(0, 100)
        if column.type == "boolean":
            return rng.random() < 0.3
        if column.name == "LSOA_CD":
            return f"W01{rng.randrange(0, 2000):06d}"
        return f"dummy-{rng.randrange(1, 10)}"

    return {c.name: [value(c, i) for i in range(rows)] for c in columns}
