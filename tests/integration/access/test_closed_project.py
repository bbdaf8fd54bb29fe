"""Closed means closed: after ``POST /close`` no extract or output of the project moves.

The attack (issue 11, finding 3): close a project, then as its member list and read its
workspace's outputs, ask for an exception or run a query, as two checkers review and release
an output, and as the member download it. Every one
of those must be refused with 409 (the project's state forbids it, docs/access.md), audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.access.storage.models import AirlockOutputRow, AuditLogRow
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


def _refusals(a: Access) -> list[tuple[str, str, dict[str, Any]]]:
    import json

    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.action, AuditLogRow.outcome, AuditLogRow.detail).where(
                AuditLogRow.outcome != "ok"
            )
        ).all()
    return [(action, outcome, json.loads(detail)) for action, outcome, detail in rows]


def test_after_close_no_member_checker_or_download_moves_an_output_or_extract(
    access: Access,
) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a)
    bob = a.h("bob", "researcher")
    eid = a.client.post(f"/v1/projects/{pid}/extracts", headers=bob).json()["id"]
    assert a.client.get(f"/v1/projects/{pid}/extracts/{eid}", headers=bob).json()["state"] == (
        "succeeded"
    )
    job = note_job(a, pid)
    released = note_output(a, pid, job, CHECKER_1, CHECKER_2)
    pending = note_output(a, pid, job, CHECKER_1)  # one more approval would release it

    r = a.client.post(f"/v1/projects/{pid}/close", headers=a.h("alice", "researcher"))
    assert r.status_code == 200 and r.json()["state"] == "closed"
    before = len(_refusals(a))

    outputs = f"/v1/projects/{pid}/workspace/outputs"
    note = {"title": "t", "kind": "file", "source": {"job": job, "file": "note.txt"}}
    attempts = {
        "member lists outputs": ("GET", outputs, bob, None),
        "member reads an output": ("GET", f"{outputs}/{pending}", bob, None),
        "member downloads a released file": (
            "GET",
            f"{outputs}/{released}/files/note.txt",
            a.h("alice", "researcher"),
            None,
        ),
        "member submits an output": ("POST", outputs, bob, note),
        "member asks for an exception": (
            "POST",
            f"{outputs}/{pending}/exception",
            bob,
            {"reason": "r"},
        ),
        "checker reads an output": ("GET", f"{outputs}/{pending}", a.h(*CHECKER_2), None),
        "second checker releases": (
            "POST",
            f"{outputs}/{pending}/reviews",
            a.h(*CHECKER_2),
            {"decision": "approve"},
        ),
        "member runs a query": (
            "POST",
            f"/v1/projects/{pid}/workspace/queries",
            bob,
            {"sql": "SELECT 1"},
        ),
        "member lists extracts": ("GET", f"/v1/projects/{pid}/extracts", bob, None),
        "member reads an extract": ("GET", f"/v1/projects/{pid}/extracts/{eid}", bob, None),
        "member downloads an extract file": (
            "GET",
            f"/v1/projects/{pid}/extracts/{eid}/files/CHILD.csv",
            bob,
            None,
        ),
        "member requests an extract": ("POST", f"/v1/projects/{pid}/extracts", bob, None),
    }
    answers = {
        what: a.client.request(method, url, headers=headers, json=body).status_code
        for what, (method, url, headers, body) in attempts.items()
    }
    assert answers == dict.fromkeys(attempts, 409), answers

    # Nothing moved: the pending output is still waiting, the checker's queue is empty of it.
    with a.ctx.sessions() as s:
        assert s.get(AirlockOutputRow, pending).state == "submitted"  # type: ignore[union-attr]
    queue = a.client.get("/v1/workspace/outputs", headers=a.h(*CHECKER_2)).json()
    assert pending not in {o["id"] for o in queue["items"]}

    # Every refusal is in the audit trail with the answer given: the first few of each caller
    # in full, the rest counted in the window's summary (once the window is closed).
    a.ctx.refusals.flush(everything=True)
    refused = _refusals(a)[before:]
    full = [(action, outcome, d) for action, outcome, d in refused if action != "audit.refusals"]
    summaries = [d for action, _, d in refused if action == "audit.refusals"]
    counted = sum(d["refused"] - d["in_full"] for d in summaries)
    assert len(full) + counted == len(attempts)
    assert all(outcome == "refused" and d["status"] == 409 for _, outcome, d in full)
    assert all(r.endswith(": 409") for d in summaries for r in d["reasons"])

    # The project itself stays readable (its record is not data): the admin and its owner.
    assert a.client.get(f"/v1/projects/{pid}", headers=a.h(*ADMIN)).json()["state"] == "closed"
    assert a.client.get(f"/v1/projects/{pid}", headers=a.h("alice", "researcher")).status_code == (
        200
    )


def test_a_foreign_researcher_still_learns_nothing_about_a_closed_projects_outputs(
    access: Access,
) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob", "mallory")
    pid = active_project(a)
    a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher"))
    oid = note_output(a, pid, note_job(a, pid))
    a.client.post(f"/v1/projects/{pid}/close", headers=a.h("alice", "researcher"))
    mallory = a.h("mallory", "researcher")
    outputs = f"/v1/projects/{pid}/workspace/outputs"
    for url in (outputs, f"{outputs}/{oid}", f"{outputs}/{oid}/files/note.txt"):
        assert a.client.get(url, headers=mallory).status_code == 404
