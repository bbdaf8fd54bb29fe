"""Two projects' extracts of the same people cannot be joined on any pseudonymised column."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from tests.integration.access.conftest import (
    Access,
    active_project,
    family_court_data,
    register,
)

LINKING_COLUMNS = ("ALF_E", "SYSTEM_ID_E", "CASE_ID_E", "LA_CD_E")


def _child_table(a: Access, project_id: str, who: str) -> dict[str, list[object]]:
    eid = a.client.post(
        f"/v1/projects/{project_id}/extracts", headers=a.h(who, "researcher")
    ).json()["id"]
    data = a.client.get(
        f"/v1/projects/{project_id}/extracts/{eid}/files/CHILD.parquet",
        headers=a.h(who, "researcher"),
    ).content
    return pq.read_table(io.BytesIO(data)).to_pydict()


def test_two_projects_extracts_share_no_pseudonym_in_any_linking_column(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    first = active_project(a, "alice", (), title="Recurrent care proceedings")
    second = active_project(a, "bob", (), title="Newborns in care proceedings")
    one = _child_table(a, first, "alice")
    two = _child_table(a, second, "bob")

    # Same rows, same people: the extracts differ only in their pseudonyms.
    assert len(one["ALF_E"]) == len(two["ALF_E"]) > 0
    assert one["WOB"] == two["WOB"] and one["ALF_STS_CD"] == two["ALF_STS_CD"]
    for column in LINKING_COLUMNS:
        left = {v for v in one[column] if v is not None}
        right = {v for v in two[column] if v is not None}
        assert left and right
        assert left.isdisjoint(right), f"{column} joins the two projects"
        # Still one-to-one within each project: the structure survives, the values do not.
        assert len(left) == len(right)


def test_within_a_project_linked_records_of_one_person_share_an_alf_e(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice")
    pid = active_project(a, "alice", ())
    table = _child_table(a, pid, "alice")
    counts: dict[object, int] = {}
    for alf_e in table["ALF_E"]:
        if alf_e is not None:
            counts[alf_e] = counts.get(alf_e, 0) + 1
    assert sorted(counts.values())[-1] == 2  # children 3 and 7 are the same spine person
