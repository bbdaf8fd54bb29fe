"""Every access route authenticates before it reads the body: garbage without a valid token
is 401 problem+json, and each refusal is audited: in full as an ``auth.authenticate`` record
(the first few of a source in a window), or counted in the window's summary (a valid request
is one ``ok`` record, not two)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.access.storage.models import AuditLogRow
from services.runtime.auth import DevIssuer
from tests.integration.access.conftest import ADMIN, AUDIENCE, Access

GARBAGE = [
    (b"\xff\xfe\x00garbage", "application/json"),  # not UTF-8: was 400 before authentication
    (b'{"title": ', "application/json"),  # not JSON: was 422 json_invalid
    (b"title=x", "application/x-www-form-urlencoded"),
]


def operations(a: Access) -> list[tuple[str, str]]:
    """Every operation the document says needs a token, its path parameters filled in."""
    found = []
    for path, methods in a.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in methods.items():
            if operation.get("security"):
                found.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return sorted(found)


def auth_audit(a: Access) -> list[tuple[str | None, str, str]]:
    with a.ctx.sessions() as session:
        rows = session.execute(
            select(AuditLogRow)
            .where(AuditLogRow.action == "auth.authenticate")
            .order_by(AuditLogRow.seq)
        ).scalars()
        return [(r.actor, r.outcome, json.loads(r.detail)["reason"]) for r in rows]


def test_the_document_lists_the_routes_with_bodies_as_needing_a_token(access: Access) -> None:
    ops = operations(access)
    assert ("post", "/v1/projects") in ops and ("post", "/v1/researchers") in ops
    assert len(ops) >= 20


@pytest.mark.parametrize(("body", "media"), GARBAGE)
def test_a_garbage_body_without_a_valid_token_is_401_and_audited_on_every_route(
    access: Access, body: bytes, media: str
) -> None:
    a = access
    moment = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
    a.ctx.refusals.clock = lambda: moment  # one counting window, whatever the machine's pace
    forged = DevIssuer.generate(issuer="https://dev.fjo.invalid").mint("eve", audience=AUDIENCE)
    ops = operations(a)
    before = len(auth_audit(a))
    for method, url in ops:
        for credentials in ({}, {"Authorization": f"Bearer {forged}"}):
            headers: dict[str, Any] = {"Content-Type": media, **credentials}
            r = a.client.request(method, url, content=body, headers=headers)
            assert r.status_code == 401, (method, url, media, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["status"] == 401
    # The first few refusals of this source are audited in full, the rest counted, and the
    # window's summary (written once it closes: here, as the service stops) has them all.
    burst = a.ctx.settings.audit.refusal_burst
    assert (
        auth_audit(a)[before:]
        == (
            [
                (None, "denied", "missing bearer token"),
                (None, "denied", "token signed by an unknown key"),
            ]
            * len(ops)
        )[:burst]
    )
    a.ctx.refusals.flush(everything=True)
    with a.ctx.sessions() as session:
        details = session.execute(
            select(AuditLogRow.detail).where(AuditLogRow.action == "audit.refusals")
        ).scalars()
        (summary,) = [json.loads(d) for d in details]
    assert summary["refused"] == 2 * len(ops) and summary["in_full"] == burst
    assert summary["reasons"] == {
        "auth.authenticate: missing bearer token": len(ops),
        "auth.authenticate: token signed by an unknown key": len(ops),
    }


def test_a_valid_token_is_one_audit_record_and_the_body_is_still_checked(access: Access) -> None:
    a = access
    before = len(auth_audit(a))
    r = a.client.post(
        "/v1/projects",
        content=b'{"title": ',
        headers={**a.h("alice", "researcher"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    r = a.client.post(
        "/v1/researchers",
        json={"subject": "alice", "display_name": "Alice", "accredited_until": "2999-01-01"},
        headers=a.h(*ADMIN),
    )
    assert r.status_code == 201, r.text
    assert auth_audit(a)[before:] == [
        ("alice", "ok", "authenticated"),
        (ADMIN[0], "ok", "authenticated"),
    ]
