"""Objections in access, on SQLite and PostgreSQL: a person's records leave the research
store and the next extract, the extract that held them is flagged (API and workspace), a late
result cannot bring them back, an opt-out leaves the person out of extracts of projects whose
legal basis requires it, counts reconcile and the audit trail verifies."""

from __future__ import annotations

import uuid

from contracts.events import LinkStatus, PersonObjected, RecordObjected
from services.access import objections
from services.access.storage.models import ResearchRecordRow
from services.access.storage.research_store import LinkResult, apply_link_results
from services.runtime.db import transaction
from tests.integration.access.conftest import (
    ADMIN,
    Access,
    active_project,
    built_extract,
    family_court_data,
    held_records,
    register,
    token,
)


def _in_store(a: Access, tok: str) -> bool:
    with a.ctx.sessions() as s:
        return s.get(ResearchRecordRow, tok) is not None


def _results(a: Access, results: list[LinkResult]) -> None:
    with transaction(a.ctx.sessions) as s:
        apply_link_results(s, results)
        objections.on_link_results(s, a.ctx.audit, results)


def _objected(kind: str, tok: str, record_type: str = "spine-person") -> RecordObjected:
    return RecordObjected(
        receipt_id=uuid.uuid4(),
        kind=kind,
        subject="person" if record_type == "spine-person" else "record",
        record_token=tok,
        record_type=record_type,
        source="wds" if record_type == "spine-person" else "cafcass-cymru",
    )


def test_an_objection_takes_a_person_out_of_the_store_and_the_next_extract(
    access: Access,
) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a)
    first = built_extract(a, pid)
    child, alf = token("child-0"), token("alf-0")
    assert child in held_records(a, first["id"])

    # Link withdraws the child's link (the spine person objected) and names them by ALF;
    # pseudonymise's objection about the spine person is counted; one about a record fjo
    # never had is refused.
    _results(a, [LinkResult(child, 2, None, int(LinkStatus.OBJECTED), 0.0, "fs-1", 1, "objection")])
    with transaction(a.ctx.sessions) as s:
        objections.on_person_objected(
            s, a.ctx.audit, PersonObjected(receipt_id=uuid.uuid4(), kind="objection", alf=alf)
        )
        objections.on_record_objected(s, a.ctx.audit, _objected("objection", child, "child"))
        objections.on_record_objected(s, a.ctx.audit, _objected("erasure", token("never-held")))
    # A result in flight when the objection came, linking another record to the person.
    late = token("child-1")
    _results(a, [LinkResult(late, 2, alf, 4, 0.99, "fs-1", 1, "spine-changed")])

    assert not _in_store(a, child) and not _in_store(a, late)
    bob = a.h("bob", "researcher")
    flagged = a.client.get(f"/v1/projects/{pid}/extracts/{first['id']}", headers=bob).json()
    assert flagged["rebuild_needed"] is True and flagged["rebuild_reason"]
    second = built_extract(a, pid)
    assert second["rebuild_needed"] is False
    assert child not in held_records(a, second["id"]) and late not in held_records(a, second["id"])
    assert held_records(a, second["id"]) < held_records(a, first["id"])
    workspace = a.client.get(f"/v1/projects/{pid}/workspace", headers=bob).json()
    assert workspace["extract_id"] == second["id"] and workspace["rebuild_needed"] is False

    summary = a.client.get("/v1/objections/summary", headers=a.h(*ADMIN))
    assert summary.status_code == 200, summary.text
    counts = summary.json()
    assert (counts["received"], counts["applied"], counts["refused"]) == (2, 1, 1)
    assert counts["refused_by_reason"] == {"unknown-record": 1}
    assert counts["extracts_flagged"] == 1
    researcher = a.client.get("/v1/objections/summary", headers=bob)
    assert researcher.status_code == 403
    verify = a.client.get("/v1/audit/verify", headers=a.h(*ADMIN)).json()
    assert verify["ok"], verify


def test_an_opt_out_keeps_the_person_but_leaves_them_out_where_the_legal_basis_requires(
    access: Access,
) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a)  # no legal basis recorded: opt-outs apply
    first = built_extract(a, pid)
    child, alf = token("child-2"), token("alf-2")
    assert child in held_records(a, first["id"])

    with transaction(a.ctx.sessions) as s:
        objections.on_person_objected(
            s, a.ctx.audit, PersonObjected(receipt_id=uuid.uuid4(), kind="opt-out", alf=alf)
        )

    assert _in_store(a, child)
    bob = a.h("bob", "researcher")
    flagged = a.client.get(f"/v1/projects/{pid}/extracts/{first['id']}", headers=bob).json()
    assert flagged["rebuild_needed"] is True
    second = built_extract(a, pid)
    assert child not in held_records(a, second["id"])
    assert held_records(a, second["id"]) == held_records(a, first["id"]) - {child}
    verify = a.client.get("/v1/audit/verify", headers=a.h(*ADMIN)).json()
    assert verify["ok"], verify
