"""k-anonymity cannot be switched off by a researcher (issue 11, finding 1).

The attack: create a project whose quasi-identifiers are names the extract does not carry
(``NOT_A_COLUMN``, or a harmless real column), get it approved and extract: the report said
``"quasi_identifiers": []`` and week of birth, sex and LSOA came out in full. The set comes
from the catalogue now; a project may only add to it, the approver pins it, and the extract
runs k-anonymity on all of it.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from services.access.domain.catalogue import QUASI_IDENTIFIERS
from tests.integration.access.conftest import (
    APPROVER,
    FAR,
    Access,
    family_court_data,
    register,
    sign_off,
)

VARIABLES = ["WOB", "GNDR_CD", "LSOA_CD", "CASE_ID_E", "LAW_TYPE", "LA_CD_E"]


def _create(a: Access, quasi_identifiers: list[str] | None) -> Any:
    body: dict[str, Any] = {"title": "Newborns", "datasets": ["case", "child"]}
    body["variables"] = VARIABLES
    if quasi_identifiers is not None:
        body["quasi_identifiers"] = quasi_identifiers
    return a.client.post("/v1/projects", json=body, headers=a.h("alice", "researcher"))


def _approve(a: Access, pid: str, quasi_identifiers: list[str]) -> Any:
    return a.client.post(
        f"/v1/projects/{pid}/approve",
        json={
            "datasets": ["case", "child"],
            "variables": VARIABLES,
            "window_start": "2015-01-01",
            "window_end": "2019-12-31",
            "members": ["alice"],
            "access_until": FAR,
            "quasi_identifiers": quasi_identifiers,
            "egress": ["row-level-download"],  # the test reads the extract's rows
        },
        headers=a.h(*APPROVER),
    )


def test_unknown_quasi_identifier_names_are_refused_not_dropped(access: Access) -> None:
    a = access
    register(a, "alice")
    r = _create(a, ["GNDR_CD", "NOT_A_COLUMN"])
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in problem["errors"]] == [["body", "quasi_identifiers", 1]]
    assert "not a variable of the catalogue" in problem["errors"][0]["msg"]
    assert "NOT_A_COLUMN" not in r.text  # where and what, never the input


def test_a_project_can_only_add_to_the_catalogues_quasi_identifiers(access: Access) -> None:
    a = access
    register(a, "alice")
    project = _create(a, ["LAW_TYPE"]).json()
    assert project["quasi_identifiers"] == [*QUASI_IDENTIFIERS, "LAW_TYPE"]
    assert _create(a, None).json()["quasi_identifiers"] == list(QUASI_IDENTIFIERS)


def test_the_approver_sees_and_pins_the_set_and_cannot_drop_from_it(access: Access) -> None:
    a = access
    register(a, "alice")
    project = _create(a, ["LAW_TYPE"]).json()
    pid = project["id"]
    a.client.post(f"/v1/projects/{pid}/submit", headers=a.h("alice", "researcher"))
    sign_off(a, pid)
    shown = a.client.get(f"/v1/projects/{pid}", headers=a.h(*APPROVER)).json()
    assert shown["quasi_identifiers"] == project["quasi_identifiers"]

    for dropped in (["GNDR_CD"], ["LAW_TYPE"]):  # the catalogue's, or the project's own
        r = _approve(a, pid, [q for q in shown["quasi_identifiers"] if q not in dropped])
        assert r.status_code == 422, r.text
        assert "quasi-identifiers" in r.json()["detail"]
    assert _approve(a, pid, ["NOT_A_COLUMN", *shown["quasi_identifiers"]]).status_code == 422

    r = _approve(a, pid, [*shown["quasi_identifiers"], "DISABILITY"])  # the approver may add
    assert r.status_code == 200, r.text
    assert r.json()["approval"]["quasi_identifiers"] == [*shown["quasi_identifiers"], "DISABILITY"]


def test_a_researcher_cannot_switch_k_anonymity_off_for_their_extract(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice")
    # The tester's project declared a name no extract carries; today it may only add.
    pid = _create(a, ["LAW_TYPE"]).json()["id"]
    a.client.post(f"/v1/projects/{pid}/submit", headers=a.h("alice", "researcher"))
    sign_off(a, pid)
    pinned = a.client.get(f"/v1/projects/{pid}", headers=a.h(*APPROVER)).json()
    assert _approve(a, pid, pinned["quasi_identifiers"]).status_code == 200
    a.client.post(f"/v1/projects/{pid}/activate", headers=a.h("alice", "researcher"))
    alice = a.h("alice", "researcher")
    eid = a.client.post(f"/v1/projects/{pid}/extracts", headers=alice).json()["id"]
    extract = a.client.get(f"/v1/projects/{pid}/extracts/{eid}", headers=alice).json()
    assert extract["state"] == "succeeded", extract

    report = extract["disclosure"]["child"]
    assert report["quasi_identifiers_pinned"] == pinned["quasi_identifiers"]
    assert report["quasi_identifiers"] == ["GNDR_CD", "WOB", "LA_CD_E", "LSOA_CD"]
    data = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}/files/CHILD.parquet", headers=alice
    ).content
    child = pq.read_table(io.BytesIO(data)).to_pylist()
    # Joined to the spine on week of birth, sex and LSOA, no child stands out: every
    # combination the extract carries is shared by at least k = 10 children.
    classes = Counter((r["WOB"], r["GNDR_CD"], r["LSOA_CD"]) for r in child)
    assert child and min(classes.values()) >= 10
    assert report["rows_below_k"] == 3 and report["rows_dropped"] == 3
