"""Audit checkpoints are written when the outermost transaction commits, never when a
SAVEPOINT inside it is released (the workers handle each record in one), on SQLite and
PostgreSQL.

Checkpointing at a savepoint's release signed a head not yet committed, and on SQLite its
write waited out the busy timeout behind the session's own open transaction ("audit
checkpoint failed: database is locked", ~30 s per worker commit that appended).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.access.bootstrap import AccessContext, build_context
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[AccessContext]:
    context = build_context(settings_for(db_url, tmp_path))
    context.audit.open(context.sessions)
    yield context
    context.dispose()


def _checkpointed(ctx: AccessContext) -> list[tuple[int, str]]:
    # A DBAPI connection outside SQLAlchemy's BEGIN (IMMEDIATE, on SQLite): a read while the
    # test's own transaction holds SQLite's write lock must not wait for it.
    raw = ctx.checkpoint_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT seq, entry_hash FROM access_audit_checkpoints ORDER BY seq")
        rows = [(int(seq), str(digest)) for seq, digest in cursor.fetchall()]
        cursor.close()
        raw.rollback()
        return rows
    finally:
        raw.close()


def test_a_savepoint_release_does_not_checkpoint_the_outer_commit_does(
    ctx: AccessContext,
) -> None:
    before = _checkpointed(ctx)
    started = time.monotonic()
    with transaction(ctx.sessions) as session:
        with session.begin_nested():
            first = ctx.audit.append(session, actor="worker", action="test.one")
        # Released, not committed: no checkpoint may vouch for it yet.
        assert _checkpointed(ctx) == before
        with session.begin_nested():
            second = ctx.audit.append(session, actor="worker", action="test.two")
    elapsed = time.monotonic() - started
    assert _checkpointed(ctx) == [*before, (second.seq, second.hash)]
    assert second.seq == first.seq + 1
    # Not a timing test of speed: the busy timeout is 30 s, so this only fails if the
    # checkpoint waited on the session's own lock (as it did).
    assert elapsed < 20, elapsed
    assert ctx.audit.verify(ctx.engine).ok


def test_a_rolled_back_savepoint_takes_its_head_with_it(ctx: AccessContext) -> None:
    before = _checkpointed(ctx)
    with transaction(ctx.sessions) as session:
        kept = ctx.audit.append(session, actor="worker", action="test.kept")
        with pytest.raises(RuntimeError), session.begin_nested():
            ctx.audit.append(session, actor="worker", action="test.undone")
            raise RuntimeError("the record failed")
    # The checkpoint is of the entry that committed, not of the one rolled back.
    assert _checkpointed(ctx) == [*before, (kept.seq, kept.hash)]
    assert ctx.audit.verify(ctx.engine).ok


def test_a_rolled_back_transaction_checkpoints_nothing(ctx: AccessContext) -> None:
    before = _checkpointed(ctx)
    with pytest.raises(RuntimeError), transaction(ctx.sessions) as session:
        ctx.audit.append(session, actor="worker", action="test.undone")
        raise RuntimeError("the batch failed")
    with transaction(ctx.sessions):
        pass  # a later commit that appended nothing
    assert _checkpointed(ctx) == before
