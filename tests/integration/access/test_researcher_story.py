"""The whole researcher story over HTTP: project, approval, extract, download, release."""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow.parquet as pq

from services.access.domain.catalogue import QUASI_IDENTIFIERS
from tests.integration.access.conftest import (
    ADMIN,
    CASES,
    CHECKER_1,
    CHECKER_2,
    Access,
    active_project,
    family_court_data,
    note_job,
    note_output,
    register,
)


def test_a_researcher_gets_from_project_to_extract_to_released_output(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a)

    project = a.client.get(f"/v1/projects/{pid}", headers=a.h("bob", "researcher")).json()
    assert project["state"] == "active"
    assert project["approval"]["approver"] == "carol"
    assert project["approval"]["members"] == ["alice", "bob"]

    # Extract: 202, built in the background, then succeeded with a manifest.
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher"))
    assert r.status_code == 202, r.text
    eid = r.json()["id"]
    extract = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}", headers=a.h("bob", "researcher")
    ).json()
    assert extract["state"] == "succeeded", extract
    names = {f["name"] for f in extract["files"]}
    assert {"CASE.parquet", "CASE.csv", "CHILD.parquet", "CHILD.csv"} <= names
    assert "data_dictionary.json" in names

    # Downloads match the manifest's SHA-256, rows follow the approval.
    manifest = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}/files/manifest.json", headers=a.h("bob", "researcher")
    ).json()
    by_name = {f["name"]: f for f in manifest["files"]}
    child_bytes = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}/files/CHILD.parquet", headers=a.h("bob", "researcher")
    ).content
    assert hashlib.sha256(child_bytes).hexdigest() == by_name["CHILD.parquet"]["sha256"]
    child = pq.read_table(io.BytesIO(child_bytes)).to_pylist()
    assert list(child[0]) == [
        "ALF_E", "SYSTEM_ID_E", "ALF_STS_CD", "ALF_MTCH_PCT", "CASE_ID_E", "WOB", "GNDR_CD",
        "LSOA_CD", "LA_CD_E",
    ]  # fmt: skip
    # 63 children in the window; the three unique ones cannot hide even with every
    # quasi-identifier suppressed (a class of 3 < k = 10), so they are dropped.
    assert len(child) == by_name["CHILD.parquet"]["rows"] == 60
    case_bytes = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}/files/CASE.csv", headers=a.h("bob", "researcher")
    ).content
    assert case_bytes.count(b"\n") == 1 + CASES  # header + the cases in the window (not 2001)

    # Every ALF and record token is a project pseudonym: none of the raw values appear.
    everything = child_bytes + case_bytes
    for raw in a.raw_alfs | a.raw_tokens:
        assert raw.encode() not in everything
    assert "W06000015" not in case_bytes.decode()  # organisation codes too

    # k-anonymity: the three unique children were reported and protected.
    report = manifest["disclosure_control"]["child"]
    assert report["k"] == 10 and report["rows_below_k"] == 3 and report["rows_dropped"] == 3
    classes: dict[tuple[object, ...], int] = {}
    for row in child:
        key = (row["GNDR_CD"], row["WOB"], row["LSOA_CD"])
        classes[key] = classes.get(key, 0) + 1
    assert min(classes.values()) >= 10

    # Linkage quality: the children's link rate, as the rows themselves give it.
    quality = manifest["linkage_quality"]["child"]
    linked = sum(1 for row in child if row["ALF_E"])
    assert (quality["rows"], quality["linked"]) == (len(child), linked)
    assert quality["share_unlinked"] == round((len(child) - linked) / len(child), 4)
    assert "case" not in manifest["linkage_quality"]  # a case is not a person

    # Outputs leave through the workspace's airlock (test_airlock.py holds ACRO's checks):
    # the author cannot release their own, one checker counts once, two release it.
    oid = note_output(a, pid, note_job(a, pid))
    review = f"/v1/projects/{pid}/workspace/outputs/{oid}/reviews"
    r = a.client.post(
        review, json={"decision": "approve"}, headers=a.h("bob", "researcher", "output-checker")
    )
    assert r.status_code == 403
    r = a.client.post(review, json={"decision": "approve"}, headers=a.h(*CHECKER_1))
    assert r.status_code == 201 and r.json()["state"] == "submitted"
    r = a.client.post(review, json={"decision": "approve"}, headers=a.h(*CHECKER_1))
    assert r.status_code == 409  # one checker counts once
    r = a.client.post(review, json={"decision": "approve"}, headers=a.h(*CHECKER_2))
    assert r.json()["state"] == "released"
    released = a.client.get(
        f"/v1/projects/{pid}/workspace/outputs/{oid}/files/note.txt",
        headers=a.h("alice", "researcher"),
    )
    assert released.status_code == 200 and released.text == "a free-form note"

    # The audit trail holds every step and verifies.
    verify = a.client.get("/v1/audit/verify", headers=a.h(*ADMIN)).json()
    assert verify["ok"], verify
    actions = _actions(a)
    for expected in (
        "auth.authenticate",
        "project.approval.recorded",
        "extract.request",
        "extract.build",
        "extract.download",
        "airlock.submit",
        "airlock.review",
        "airlock.release",
        "airlock.download",
    ):
        assert expected in actions, expected


def test_approvers_cannot_approve_their_own_project(access: Access) -> None:
    a = access
    register(a, "alice", "carol")
    r = a.client.post(
        "/v1/projects", json={"title": "Own project"}, headers=a.h("carol", "researcher")
    )
    pid = r.json()["id"]
    a.client.post(f"/v1/projects/{pid}/submit", headers=a.h("carol", "researcher"))
    r = a.client.post(
        f"/v1/projects/{pid}/approve",
        json={
            "datasets": ["case"],
            "variables": [],
            "window_start": "2015-01-01",
            "window_end": "2019-12-31",
            "members": ["carol"],
            "access_until": "2099-01-01",
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
        },
        headers=a.h("carol", "researcher", "approver"),
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 403


def test_an_expired_accreditation_loses_access(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a)
    r = a.client.put(
        "/v1/researchers/bob/accreditation",
        json={"accredited_until": "2020-01-01"},
        headers=a.h(*ADMIN),
    )
    assert r.status_code == 200 and r.json()["accredited"] is False
    assert (
        a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher")).status_code
        == 404
    )
    assert a.client.get(f"/v1/projects/{pid}", headers=a.h("bob", "researcher")).status_code == 404
    assert (
        a.client.post(
            f"/v1/projects/{pid}/extracts", headers=a.h("alice", "researcher")
        ).status_code
        == 202
    )


def test_extract_requests_are_rate_limited_per_researcher(access: Access) -> None:
    a = access
    register(a, "alice", "bob")
    pid = active_project(a)
    limit = a.ctx.settings.extracts.rate_limit
    for _ in range(limit):
        assert (
            a.client.post(
                f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher")
            ).status_code
            == 202
        )
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher"))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # Another member has their own allowance.
    assert (
        a.client.post(
            f"/v1/projects/{pid}/extracts", headers=a.h("alice", "researcher")
        ).status_code
        == 202
    )


def test_the_same_person_keeps_one_alf_e_across_a_projects_extracts(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice")
    pid = active_project(a, members=())
    columns = []
    for _ in range(2):
        eid = a.client.post(
            f"/v1/projects/{pid}/extracts", headers=a.h("alice", "researcher")
        ).json()["id"]
        data = a.client.get(
            f"/v1/projects/{pid}/extracts/{eid}/files/CHILD.parquet",
            headers=a.h("alice", "researcher"),
        ).content
        columns.append(pq.read_table(io.BytesIO(data)).column("ALF_E").to_pylist())
    assert columns[0] == columns[1]
    linked = [x for x in columns[0] if x is not None]
    assert len(set(linked)) == len(linked) - 1  # child 3 and child 7 are one person


def _actions(a: Access) -> set[str]:
    from sqlalchemy import select

    from services.access.storage.models import AuditLogRow

    with a.ctx.sessions() as s:
        return set(s.execute(select(AuditLogRow.action)).scalars())


def test_problem_documents_do_not_echo_input(access: Access) -> None:
    r = access.client.post(
        "/v1/projects",
        json={"title": "x", "summary": "NHS 943 476 5919"},
        headers=access.h("alice", "researcher"),
    )
    assert r.status_code == 422
    assert "943 476 5919" not in json.dumps(r.json())
