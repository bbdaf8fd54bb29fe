"""The public transparency register (docs/access.md, "The public register"): anyone reads it
without a token, and it shows only what the panel approved for publication, and of released
outputs only their title, date and checker count."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select

from services.access.storage.models import AuditLogRow
from tests.integration.access.conftest import (
    ADMIN,
    CHECKER_1,
    CHECKER_2,
    Access,
    active_project,
    family_court_data,
    note_job,
    note_output,
    register,
)


def _world(a: Access) -> dict[str, str]:
    a.seed(*family_court_data())
    r = a.client.post(
        "/v1/researchers",
        json={
            "subject": "alice",
            "display_name": "Alice",
            "organisation": "Swansea University",
            "accredited_until": "2099-01-01",
        },
        headers=a.h(*ADMIN),
    )
    assert r.status_code == 201, r.text
    register(a, "bob")
    published = active_project(a, title="Newborns in care proceedings")
    withheld = active_project(
        a,
        title="A sensitive study",
        publish_in_register=False,
        register_withheld_reason="The panel agreed to publish at the end of a police inquiry.",
    )
    r = a.client.post("/v1/projects", json={"title": "A draft"}, headers=a.h("alice", "researcher"))
    draft = r.json()["id"]
    jobs = {}
    for pid in (published, withheld):
        r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher"))
        assert r.status_code == 202, r.text
        jobs[pid] = note_job(a, pid)
    job = jobs[published]
    note_output(a, published, job, CHECKER_1, CHECKER_2, title="Children by sex and year")
    note_output(a, published, job, CHECKER_1, title="Pending table")  # waits for a second one
    note_output(a, withheld, jobs[withheld], CHECKER_1, CHECKER_2, title="Withheld project's table")
    return {"published": published, "withheld": withheld, "draft": draft}


def test_anyone_reads_only_the_published_projects_and_their_released_outputs(
    access: Access,
) -> None:
    a = access
    ids = _world(a)
    r = a.client.get("/v1/register/projects")  # no token
    assert r.status_code == 200, r.text
    page = r.json()
    assert [p["id"] for p in page["items"]] == [ids["published"]] and page["next_cursor"] is None
    [entry] = page["items"]
    assert entry["title"] == "Newborns in care proceedings"
    assert entry["organisation"] == "Swansea University"
    assert entry["datasets"] == ["case", "child"] and entry["status"] == "active"
    assert entry["approved_on"] and entry["closed_on"] is None
    [released] = entry["released_outputs"]
    assert released["released_on"] is not None
    assert {**released, "released_on": None} == {
        "title": "Children by sex and year",
        "released_on": None,
        "checkers": 2,
    }
    # Never an output's content, nor anything of the withheld project.
    assert "cells" not in r.text and "count" not in r.text and "free-form" not in r.text
    assert "sensitive" not in r.text and "Withheld" not in r.text and "Pending" not in r.text

    csv_r = a.client.get("/v1/register/projects.csv")
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert [row["id"] for row in rows] == [ids["published"]]
    assert rows[0]["released_outputs"] == "1"
    assert rows[0]["released_output_titles"] == "Children by sex and year"
    assert rows[0]["organisation"] == "Swansea University"

    # The panel's decision to withhold is recorded with its reason, and audited.
    project = a.client.get(f"/v1/projects/{ids['withheld']}", headers=a.h(*ADMIN)).json()
    assert project["approval"]["publish_in_register"] is False
    assert project["approval"]["register_withheld_reason"].startswith("The panel agreed")
    with a.ctx.sessions() as s:
        details = [
            json.loads(d)
            for d in s.execute(
                select(AuditLogRow.detail).where(
                    AuditLogRow.action == "project.approval.recorded",
                    AuditLogRow.project_id == ids["withheld"],
                )
            ).scalars()
        ]
    assert [d["publish_in_register"] for d in details] == [False]


def test_the_register_pages_like_every_list_and_refuses_a_forged_cursor(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    made = [active_project(a, title=f"Study {i}") for i in range(3)]
    first = a.client.get("/v1/register/projects", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = a.client.get(
        "/v1/register/projects", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert rest["next_cursor"] is None
    assert [p["id"] for p in first["items"] + rest["items"]] == made  # approval order
    bad = a.client.get("/v1/register/projects", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-cursor")


def test_withholding_a_project_needs_a_reason(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    r = a.client.post(
        "/v1/projects",
        json={"title": "No reason given", "datasets": ["case"], "variables": []},
        headers=a.h("alice", "researcher"),
    )
    pid = r.json()["id"]
    body = {
        "datasets": ["case"],
        "variables": [],
        "window_start": "2015-01-01",
        "window_end": "2019-12-31",
        "members": ["alice"],
        "access_until": "2099-01-01",
        "quasi_identifiers": r.json()["quasi_identifiers"],
        "publish_in_register": False,
    }
    refused = a.client.post(
        f"/v1/projects/{pid}/approve", json=body, headers=a.h("carol", "approver")
    )
    assert refused.status_code == 422, refused.text
    assert "reason" in refused.text
