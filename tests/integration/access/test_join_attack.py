"""Two projects' extracts cannot be joined on their content (issue 11, finding 2).

The attack: two projects are approved the same data; each extract has its own pseudonyms, but
exact dates and the six-digit ALF_MTCH_PCT matched 100 % of case and hearing rows and 88 % of
child rows one to one, which recovers the ALF_E <-> ALF_E mapping. Here the attacker holds
both extracts of the demo world (every dataset, every variable) and joins each table on
everything but the record and person pseudonyms: dates, probabilities, codes, categories,
and the organisation pseudonyms read as their sizes (the number of rows carrying each, which
is the same in both projects and maps them across). A "match" is a combination of values
found exactly once in each extract; it is counted correct when both rows are the same record.
Chance is what such pairs would score if content said nothing about who is who: each right
with probability 1/n. The attack must do no better.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from services.access.domain.catalogue import CATALOGUE, LINKAGE_COLUMNS
from services.access.domain.pseudonyms import ProjectPseudonymiser, PseudonymKind
from services.access.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.integration.access.conftest import (
    APPROVER,
    AUDIENCE,
    FAR,
    Access,
    register,
    settings_for,
    sign_off,
)
from tests.integration.access.world import StoredWorld, stored_world

DATASETS = list(CATALOGUE)
VARIABLES = sorted({v.name for d in CATALOGUE.values() for v in d.variables})
ORGANISATIONS = {
    v.name
    for v in (*LINKAGE_COLUMNS, *(v for d in CATALOGUE.values() for v in d.variables))
    if v.pseudonym is PseudonymKind.ORGANISATION
}
PERSONAL = {
    v.name
    for v in (*LINKAGE_COLUMNS, *(v for d in CATALOGUE.values() for v in d.variables))
    if v.pseudonym is not None and v.name not in ORGANISATIONS
}


@dataclass(frozen=True)
class Figures:
    table: str
    rows: int
    matches: int  # combinations found exactly once in each extract
    correct: int  # of those, the same record on both sides
    chance: float  # expected correct matches if content carried no information

    def ceiling(self) -> int:
        """The most correct matches chance gives in 999 runs of 1000 (binomial)."""
        p = 1 / self.rows if self.rows else 0.0
        total, at_most = 0.0, 0
        while at_most <= self.matches:
            total += (
                math.comb(self.matches, at_most) * p**at_most * (1 - p) ** (self.matches - at_most)
            )
            if total >= 0.999:
                break
            at_most += 1
        return at_most


def _features(table: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    """Each row's content as the attacker compares it across the two projects."""
    columns = [c for c in table if c not in PERSONAL]
    sizes = {c: Counter(table[c]) for c in columns if c in ORGANISATIONS}
    n = len(table["SYSTEM_ID_E"])
    return [
        tuple(sizes[c][table[c][i]] if c in sizes else table[c][i] for c in columns)
        for i in range(n)
    ]


def join_attack(
    name: str,
    one: dict[str, list[Any]],
    two: dict[str, list[Any]],
    truth_one: dict[str, str],
    truth_two: dict[str, str],
) -> Figures:
    """Match rows of ``one`` and ``two`` whose content combination is unique in both."""
    left, right = _features(one), _features(two)
    count_left, count_right = Counter(left), Counter(right)
    where = {feature: i for i, feature in enumerate(right)}
    matches = correct = 0
    for i, feature in enumerate(left):
        if count_left[feature] == 1 and count_right.get(feature) == 1:
            matches += 1
            j = where[feature]
            correct += truth_one[one["SYSTEM_ID_E"][i]] == truth_two[two["SYSTEM_ID_E"][j]]
    rows = len(right)
    return Figures(name, rows, matches, correct, matches / rows if rows else 0.0)


@pytest.fixture(scope="module")
def world() -> StoredWorld:
    return stored_world()


@pytest.fixture
def access(sqlite_url: str, tmp_path: Path) -> Iterator[Access]:
    # One backend is enough here: what is measured is the extract builder's output.
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    app = create_app(
        settings_for(sqlite_url, tmp_path), verifier=issuer.verifier(audience=AUDIENCE)
    )
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Access(client=client, issuer=issuer, ctx=app.state.access)


def _project(a: Access, owner: str, precision: str) -> str:
    h = a.h(owner, "researcher")
    body = {"title": f"Project of {owner}", "datasets": DATASETS, "variables": VARIABLES}
    project = a.client.post("/v1/projects", json=body, headers=h).json()
    pid: str = project["id"]
    a.client.post(f"/v1/projects/{pid}/submit", headers=h)
    sign_off(a, pid)  # every data controller signs before the panel's approval
    r = a.client.post(
        f"/v1/projects/{pid}/approve",
        json={
            "datasets": DATASETS,
            "variables": VARIABLES,
            "window_start": "2000-01-01",
            "window_end": "2030-12-31",
            "members": [owner],
            "access_until": FAR,
            "quasi_identifiers": project["quasi_identifiers"],
            "date_precision": precision,
            "egress": ["row-level-download"],  # the attacker holds both projects' rows
        },
        headers=a.h(*APPROVER),
    )
    assert r.status_code == 200, r.text
    assert a.client.post(f"/v1/projects/{pid}/activate", headers=h).status_code == 200
    return pid


def _extract(a: Access, pid: str, owner: str) -> dict[str, dict[str, list[Any]]]:
    h = a.h(owner, "researcher")
    eid = a.client.post(f"/v1/projects/{pid}/extracts", headers=h).json()["id"]
    status = a.client.get(f"/v1/projects/{pid}/extracts/{eid}", headers=h).json()
    assert status["state"] == "succeeded", status
    tables = {}
    for dataset in DATASETS:
        name = dataset.upper().replace("-", "_") + ".parquet"
        data = a.client.get(f"/v1/projects/{pid}/extracts/{eid}/files/{name}", headers=h).content
        tables[dataset] = pq.read_table(io.BytesIO(data)).to_pydict()
    return tables


def _truth(a: Access, pid: str, world: StoredWorld) -> dict[str, str]:
    """SYSTEM_ID_E -> record token: the test knows the key, the attacker does not."""
    p = ProjectPseudonymiser(a.ctx.pseudonym_master, pid)
    return {
        str(p.pseudonym(PseudonymKind.RECORD, r.record_token)): r.record_token
        for r in world.records
    }


@pytest.mark.parametrize("precision", ["week", "month", "year"])
def test_two_projects_extracts_of_the_same_data_join_no_better_than_chance(
    access: Access, world: StoredWorld, precision: str
) -> None:
    a = access
    a.seed(world.records, world.links)
    register(a, "alice", "bob")
    first, second = _project(a, "alice", precision), _project(a, "bob", precision)
    one, two = _extract(a, first, "alice"), _extract(a, second, "bob")
    truth_one, truth_two = _truth(a, first, world), _truth(a, second, world)

    figures = [join_attack(d, one[d], two[d], truth_one, truth_two) for d in DATASETS]
    print()  # the figures the report quotes (pytest -s)
    for f in figures:
        print(
            f"join attack ({precision}) {f.table}: {f.rows} rows, {f.matches} one-to-one "
            f"matches, {f.correct} correct, chance {f.chance:.2f} (at most {f.ceiling()})"
        )
    assert sum(f.rows for f in figures) > 1000  # the world's extracts are not empty
    for f in figures:
        assert f.correct <= f.ceiling(), f


def test_the_attack_finds_the_joins_when_content_is_given_exactly() -> None:
    # The measuring stick can fail: on two copies of rows that are unique on their content
    # (what the extracts held before), every row is a correct one-to-one match.
    days = [f"2016-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(50)]
    rows = {"SYSTEM_ID_E": [f"a{i}" for i in range(50)], "RECEIVED_DT": days}
    other = {"SYSTEM_ID_E": [f"b{i}" for i in range(50)][::-1], "RECEIVED_DT": days[::-1]}
    truth_one = {f"a{i}": f"r{i}" for i in range(50)}
    truth_two = {f"b{i}": f"r{i}" for i in range(50)}
    f = join_attack("case", rows, other, truth_one, truth_two)
    assert (f.matches, f.correct) == (50, 50) and f.correct > f.ceiling()
