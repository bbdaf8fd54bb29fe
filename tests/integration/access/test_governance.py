"""The panel and the data controllers: every controller whose data a project uses signs before
the panel's approval takes effect; the panel returns with comments or rejects (final)."""

from __future__ import annotations

import json

from sqlalchemy import select

from services.access.domain.catalogue import QUASI_IDENTIFIERS
from services.access.storage.models import AuditLogRow
from tests.integration.access.conftest import ADMIN, APPROVER, FAR, Access, register


def _submitted(a: Access, **extra: object) -> str:
    r = a.client.post(
        "/v1/projects",
        json={
            "title": "Newborns in care proceedings",
            "summary": "How often newborns enter care proceedings, by area.",
            "datasets": ["case", "child"],
            "variables": ["WOB", "GNDR_CD"],
            "legal_basis": "UK GDPR 6(1)(e), 9(2)(j)",
            "dsa_reference": "DSA-FJO-2025-014",
            **extra,
        },
        headers=a.h("alice", "researcher"),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert a.client.post(
        f"/v1/projects/{pid}/submit", headers=a.h("alice", "researcher")
    ).is_success
    return pid


def _approve(a: Access, pid: str) -> int:
    return a.client.post(
        f"/v1/projects/{pid}/approve",
        json={
            "datasets": ["case", "child"],
            "variables": ["WOB", "GNDR_CD"],
            "window_start": "2015-01-01",
            "window_end": "2019-12-31",
            "members": ["alice"],
            "access_until": FAR,
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
            "conditions": "Report counts under 10 as <10.",
        },
        headers=a.h(*APPROVER),
    ).status_code


def test_approval_waits_for_every_controller_whose_data_the_project_uses(access: Access) -> None:
    a = access
    register(a, "alice")
    pid = _submitted(a)
    project = a.client.get(f"/v1/projects/{pid}", headers=a.h("alice", "researcher")).json()
    assert project["controllers_required"] == ["cafcass", "cafcass-cymru", "wds"]
    assert project["requested"]["legal_basis"] == "UK GDPR 6(1)(e), 9(2)(j)"
    assert project["requested"]["dsa_reference"] == "DSA-FJO-2025-014"

    assert _approve(a, pid) == 409  # nobody has signed
    for controller in ("cafcass", "wds"):
        r = a.client.post(f"/v1/projects/{pid}/sign-offs", headers=a.controller(controller))
        assert r.status_code == 201, r.text
    assert _approve(a, pid) == 409  # Cafcass Cymru has not
    again = a.client.post(f"/v1/projects/{pid}/sign-offs", headers=a.controller("cafcass"))
    assert again.status_code == 409  # one signature per controller
    r = a.client.post(
        f"/v1/projects/{pid}/sign-offs",
        json={"comment": "Welsh records: SAIL's usual conditions."},
        headers=a.controller("cafcass-cymru"),
    )
    assert r.status_code == 201
    assert [s["controller"] for s in r.json()["sign_offs"]] == ["cafcass", "wds", "cafcass-cymru"]
    assert _approve(a, pid) == 200
    with a.ctx.sessions() as session:
        rows = session.execute(
            select(AuditLogRow.action, AuditLogRow.detail)
            .where(AuditLogRow.action == "project.sign-off", AuditLogRow.outcome == "ok")
            .order_by(AuditLogRow.seq)
        ).all()
    actions = [(action, json.loads(detail)["controller"]) for action, detail in rows]
    assert actions == [
        ("project.sign-off", "cafcass"),
        ("project.sign-off", "wds"),
        ("project.sign-off", "cafcass-cymru"),
    ]


def test_a_controller_cannot_sign_for_another_nor_a_draft_nor_their_own_project(
    access: Access,
) -> None:
    a = access
    register(a, "alice", "cerys")
    draft = a.client.post(
        "/v1/projects", json={"title": "Draft"}, headers=a.h("alice", "researcher")
    ).json()["id"]
    # A draft is not shown to controllers at all.
    assert (
        a.client.post(
            f"/v1/projects/{draft}/sign-offs", headers=a.controller("cafcass")
        ).status_code
        == 404
    )
    pid = _submitted(a)
    no_source = a.h("cerys", "data-controller")  # the role without naming a controller
    assert a.client.post(f"/v1/projects/{pid}/sign-offs", headers=no_source).status_code == 404
    unknown = a.issuer.mint(
        "x", audience="fjo-access", roles=["data-controller"], source="nhs-wales"
    )
    r = a.client.post(
        f"/v1/projects/{pid}/sign-offs", headers={"Authorization": f"Bearer {unknown}"}
    )
    assert r.status_code == 404
    assert a.client.post(f"/v1/projects/{pid}/sign-offs", headers=a.h(*APPROVER)).status_code == 403


def test_the_panel_returns_with_comments_and_rejects_for_good(access: Access) -> None:
    a = access
    register(a, "alice")
    pid = _submitted(a)
    r = a.client.post(
        f"/v1/projects/{pid}/return",
        json={"comment": "Say why week of birth is needed."},
        headers=a.h(*APPROVER),
    )
    assert r.status_code == 200 and r.json()["state"] == "draft"
    seen = a.client.get(f"/v1/projects/{pid}", headers=a.h("alice", "researcher")).json()
    assert [(d["kind"], d["comment"]) for d in seen["decisions"]] == [
        ("returned", "Say why week of birth is needed.")
    ]
    assert a.client.post(
        f"/v1/projects/{pid}/submit", headers=a.h("alice", "researcher")
    ).is_success
    r = a.client.post(
        f"/v1/projects/{pid}/reject", json={"comment": "Out of scope."}, headers=a.h(*APPROVER)
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert (
        a.client.post(f"/v1/projects/{pid}/submit", headers=a.h("alice", "researcher")).status_code
        == 409
    )
    assert a.client.post(f"/v1/projects/{pid}/reject", headers=a.h(*ADMIN)).status_code == 403
