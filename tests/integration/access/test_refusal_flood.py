"""Refused requests do not grow the audit log without limit (issue 11, finding 8).

The attack: every unauthenticated request wrote one audit row and one checkpoint, so anyone
on the network could grow the trail (and its signing work) at will. Refusals are now
aggregated per source and window: the first few in full, then one summary entry with the
count, first and last seen and the reasons, so the record of the attack is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.access.config import AuditSettings
from services.access.entrypoints import create_app
from services.access.storage.models import AuditCheckpointRow, AuditLogRow
from services.runtime.auth import DevIssuer
from tests.integration.access.conftest import AUDIENCE, Access, register, settings_for

FLOOD = 300


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _app(db_url: str, tmp_path: Path, issuer: DevIssuer, clock: Clock) -> Any:
    app = create_app(settings_for(db_url, tmp_path), verifier=issuer.verifier(audience=AUDIENCE))
    app.state.access.refusals.clock = clock
    return app


@pytest.fixture
def access(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Access]:
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    app = _app(db_url, tmp_path, issuer, clock)
    with TestClient(app, client=("203.0.113.7", 40000)) as client:
        yield Access(client=client, issuer=issuer, ctx=app.state.access)


def _counts(a: Access) -> tuple[int, int]:
    with a.ctx.sessions() as s:
        rows = s.execute(select(func.count()).select_from(AuditLogRow)).scalar_one()
    with a.ctx.checkpoint_engine.connect() as conn:
        cps = conn.execute(select(func.count()).select_from(AuditCheckpointRow)).scalar_one()
    return rows, cps


def _entries(a: Access, action: str) -> list[dict[str, Any]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.actor, AuditLogRow.outcome, AuditLogRow.detail)
            .where(AuditLogRow.action == action)
            .order_by(AuditLogRow.seq)
        ).all()
    return [{"actor": r.actor, "outcome": r.outcome, **json.loads(r.detail)} for r in rows]


def test_a_flood_of_unauthenticated_requests_adds_a_bounded_number_of_entries(
    access: Access, clock: Clock
) -> None:
    a = access
    rows_before, cps_before = _counts(a)
    for i in range(FLOOD):
        headers = {} if i % 2 else {"Authorization": "Bearer not-a-token"}
        assert a.client.get("/v1/projects", headers=headers).status_code == 401
        clock.now += timedelta(milliseconds=10)
    rows, cps = _counts(a)
    burst = a.ctx.settings.audit.refusal_burst
    assert rows - rows_before == burst  # the first few in full, the rest counted
    assert cps - cps_before == burst

    # The window closes; the next refusal (or the service's start or stop) writes what was
    # counted: nothing of the attack is lost.
    clock.now += timedelta(seconds=a.ctx.settings.audit.refusal_window_s)
    assert a.client.get("/v1/projects").status_code == 401
    (summary,) = _entries(a, "audit.refusals")
    assert summary["source"] == "address:203.0.113.7"
    assert summary["refused"] == FLOOD and summary["in_full"] == burst
    assert summary["reasons"] == {
        "auth.authenticate: missing bearer token": FLOOD // 2,
        "auth.authenticate: token not valid: DecodeError": FLOOD // 2,
    }
    assert summary["first_seen"] == "2026-03-02T09:00:00+00:00"
    assert summary["last_seen"] == "2026-03-02T09:00:02.990000+00:00"
    full = [e for e in _entries(a, "auth.authenticate") if e["outcome"] == "denied"]
    assert len(full) == burst + 1  # and the first of the new window
    assert a.client.get("/v1/audit/verify", headers=a.h("root", "admin")).json()["ok"]


def test_each_source_is_counted_apart_and_an_authenticated_prober_is_too(
    access: Access, db_url: str, tmp_path: Path, clock: Clock
) -> None:
    a = access
    register(a, "alice")
    other = TestClient(a.client.app, client=("198.51.100.9", 40001))
    for _ in range(20):
        a.client.get("/v1/projects")
        other.get("/v1/projects")
        # An authenticated researcher walking other projects' ids: 404 each, audited as such.
        a.client.get(
            f"/v1/projects/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=a.h("alice", "researcher")
        )
    burst = a.ctx.settings.audit.refusal_burst
    clock.now += timedelta(seconds=a.ctx.settings.audit.refusal_window_s)
    a.ctx.refusals.flush()
    summaries = {s["source"]: s for s in _entries(a, "audit.refusals")}
    assert set(summaries) == {"address:203.0.113.7", "address:198.51.100.9", "subject:alice"}
    assert all(s["refused"] == 20 and s["in_full"] == burst for s in summaries.values())
    assert summaries["subject:alice"]["reasons"] == {"project.read: 404": 20}
    assert len([e for e in _entries(a, "project.read") if e["outcome"] == "denied"]) == burst


def test_two_replicas_count_one_source_together(db_url: str, tmp_path: Path, clock: Clock) -> None:
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    one, two = _app(db_url, tmp_path, issuer, clock), _app(db_url, tmp_path, issuer, clock)
    with (
        TestClient(one, client=("203.0.113.7", 1)) as c1,
        TestClient(two, client=("203.0.113.7", 2)) as c2,
    ):
        for _ in range(15):
            c1.get("/v1/projects")
            c2.get("/v1/projects")
        ctx = one.state.access
        clock.now += timedelta(seconds=ctx.settings.audit.refusal_window_s)
        ctx.refusals.flush()
        a = Access(client=c1, issuer=issuer, ctx=ctx)
        (summary,) = _entries(a, "audit.refusals")
        assert summary["refused"] == 30 and summary["in_full"] == ctx.settings.audit.refusal_burst
        assert ctx.audit.verify(ctx.engine).ok


def test_beyond_the_source_limit_new_sources_share_one_window(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    # An attacker with many addresses (one IPv6 /64 is plenty) gets no more entries for it.
    settings = settings_for(db_url, tmp_path).model_copy(
        update={"audit": AuditSettings(refusal_sources=10, refusal_burst=2)}
    )
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    app = create_app(settings, verifier=issuer.verifier(audience=AUDIENCE))
    app.state.access.refusals.clock = clock
    with TestClient(app) as client:
        a = Access(client=client, issuer=issuer, ctx=app.state.access)
        for i in range(40):
            for _ in range(3):
                TestClient(app, client=(f"2001:db8::{i:x}", 1)).get("/v1/projects")
        clock.now += timedelta(seconds=settings.audit.refusal_window_s)
        a.ctx.refusals.flush()
        denied = [e for e in _entries(a, "auth.authenticate") if e["outcome"] == "denied"]
        summaries = {s["source"]: s for s in _entries(a, "audit.refusals")}
    assert len(denied) == 10 * 2 + 2  # ten sources of their own, then the shared one
    assert len({e["source"] for e in denied}) == 11
    assert summaries["address:*"]["refused"] == 30 * 3  # every refusal is still counted
    assert sum(s["refused"] for s in summaries.values()) == 40 * 3
