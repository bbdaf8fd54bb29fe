"""The audit trail detects modified, inserted and deleted rows, including the newest ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from services.access.bootstrap import AccessContext, build_context
from services.access.config import AccessSettings
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> AccessContext:
    context = build_context(settings_for(db_url, tmp_path))
    for i in range(10):
        with transaction(context.sessions) as s:
            context.audit.append(
                s,
                actor="alice",
                action="extract.download",
                object_type="extract",
                object_id=f"e{i}",
                project_id="p1",
                detail={"file": "CHILD.csv", "n": i},
            )
    yield context
    context.dispose()


def _sql(ctx: AccessContext, statement: str, **params: object) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text(statement), params)


def _problems(ctx: AccessContext) -> list[str]:
    result = ctx.audit.verify(ctx.engine)
    assert result.ok == (not result.problems)
    return result.problems


def test_an_untouched_trail_verifies(ctx: AccessContext) -> None:
    result = ctx.audit.verify(ctx.engine)
    assert result.ok and result.entries == 10 and result.checkpoints == 10


def test_a_modified_row_is_detected(ctx: AccessContext) -> None:
    _sql(ctx, "UPDATE access_audit_log SET actor = 'mallory' WHERE seq = 4")
    assert any("row 4 was modified" in p for p in _problems(ctx))


def test_a_modified_detail_is_detected(ctx: AccessContext) -> None:
    _sql(
        ctx,
        "UPDATE access_audit_log SET detail = :d WHERE seq = 7",
        d='{"file": "CASE.csv", "n": 6}',
    )
    assert any("row 7 was modified" in p for p in _problems(ctx))


def test_a_row_inserted_in_the_middle_is_detected(ctx: AccessContext) -> None:
    # Make room after row 5 and forge a row 6 that links to row 5; without the audit key the
    # forger can only guess its hash (here: a plain SHA-256, as an unkeyed chain would use).
    for seq in range(10, 5, -1):
        _sql(ctx, "UPDATE access_audit_log SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    with ctx.engine.connect() as conn:
        prev = conn.execute(text("SELECT hash FROM access_audit_log WHERE seq = 5")).scalar_one()
    forged = hashlib.sha256(f"{prev}|forged".encode()).hexdigest()
    _sql(
        ctx,
        "INSERT INTO access_audit_log (seq, at, actor, action, outcome, object_type, object_id,"
        " project_id, detail, prev_hash, hash) VALUES (6, '2026-01-01T00:00:00.000000+00:00',"
        " 'root', 'project.approve', 'ok', 'project', 'p1', 'p1', '{}', :prev, :hash)",
        prev=prev,
        hash=forged,
    )
    problems = _problems(ctx)
    assert any("row 6 was modified" in p for p in problems)
    assert any("row 7 does not link" in p for p in problems)


def test_a_row_deleted_from_the_middle_is_detected(ctx: AccessContext) -> None:
    _sql(ctx, "DELETE FROM access_audit_log WHERE seq = 5")
    problems = _problems(ctx)
    assert any("rows 5..5 are missing" in p for p in problems)
    assert any("row 6 does not link" in p for p in problems)


def test_deleting_the_newest_rows_is_detected_by_the_signed_checkpoints(
    ctx: AccessContext,
) -> None:
    # The careful attacker: delete the last three rows and wind the head back, leaving a
    # chain that is perfectly consistent on its own.
    _sql(ctx, "DELETE FROM access_audit_log WHERE seq > 7")
    with ctx.engine.connect() as conn:
        h = conn.execute(text("SELECT hash FROM access_audit_log WHERE seq = 7")).scalar_one()
    _sql(ctx, "UPDATE access_audit_head SET seq = 7, hash = :h", h=h)
    problems = _problems(ctx)
    assert any("newest rows were deleted" in p for p in problems), problems


def test_a_forged_checkpoint_is_detected(ctx: AccessContext) -> None:
    _sql(
        ctx,
        "INSERT INTO access_audit_checkpoints (seq, entry_hash, at, signature)"
        " VALUES (99, :h, '2026-01-01T00:00:00+00:00', :s)",
        h="0" * 64,
        s="f" * 64,
    )
    assert any("bad signature" in p for p in _problems(ctx))


def test_checkpoints_kept_in_another_database_survive_a_truncation_of_the_log(
    db_url: str, tmp_path: Path
) -> None:
    base = settings_for(db_url, tmp_path)
    settings = AccessSettings(
        **{
            **base.model_dump(),
            "pseudonym_master_key": base.pseudonym_master_key,
            "audit_key": base.audit_key,
            "checkpoint_key": base.checkpoint_key,
            "checkpoint_database_url": f"sqlite:///{tmp_path / 'checkpoints.db'}",
        }
    )
    ctx = build_context(settings)
    try:
        for i in range(3):
            with transaction(ctx.sessions) as s:
                ctx.audit.append(s, actor="a", action="extract.request", detail={"i": i})
        # Someone with the access database wipes the trail, head and local checkpoints alike.
        _sql(ctx, "DELETE FROM access_audit_log")
        _sql(ctx, "UPDATE access_audit_head SET seq = 0, hash = :h", h="0" * 64)
        problems = _problems(ctx)
        assert any("newest rows were deleted" in p for p in problems)
    finally:
        ctx.dispose()
