"""The audit tables take inserts only: triggers on both backends, grants on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from fjo.cli import app
from services.access.bootstrap import AccessContext, build_context
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for

REFUSED_AS_OWNER = [
    "UPDATE access_audit_log SET actor = 'mallory' WHERE seq = 2",
    "DELETE FROM access_audit_log WHERE seq = 2",
    "UPDATE access_audit_checkpoints SET entry_hash = 'x' WHERE seq = 2",
    "DELETE FROM access_audit_checkpoints",
    "UPDATE access_audit_head SET seq = 1",  # winding the head back
    "UPDATE access_audit_head SET seq = seq + 2",  # or jumping it
    "DELETE FROM access_audit_head",
]


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[AccessContext]:
    context = build_context(settings_for(db_url, tmp_path))
    context.audit.open(context.sessions)
    with transaction(context.sessions) as s:
        context.audit.append(s, actor="alice", action="extract.request")
    yield context
    context.dispose()


@pytest.mark.parametrize("statement", REFUSED_AS_OWNER)
def test_the_triggers_refuse_changing_or_deleting_the_trail(
    ctx: AccessContext, statement: str
) -> None:
    with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(text(statement))
    assert ctx.audit.verify(ctx.engine).ok


def test_truncate_is_refused_on_postgresql(ctx: AccessContext) -> None:
    if ctx.engine.dialect.name != "postgresql":
        assert ctx.engine.dialect.name == "sqlite"  # SQLite has no TRUNCATE (DELETE is above)
        return
    for table in ("access_audit_log", "access_audit_checkpoints", "access_audit_head"):
        with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))


@pytest.mark.postgres
def test_the_services_role_may_append_but_never_update_or_delete(
    postgres_url: str, fresh_postgres_db: object, tmp_path: Path
) -> None:
    url = fresh_postgres_db()  # type: ignore[operator]
    owner = build_context(settings_for(url, tmp_path))  # the owner migrates
    owner.dispose()
    role = f"fjo_access_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    owner_engine = create_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        script = CliRunner().invoke(app, ["audit", "grants", "--role", role])
        assert script.exit_code == 0, script.output
        with owner_engine.begin() as conn:
            for line in script.output.splitlines():
                if line.strip() and not line.startswith("--"):
                    conn.execute(text(line.rstrip(";")))
        service_url = make_url(url).set(username=role).render_as_string(hide_password=False)
        settings = settings_for(service_url, tmp_path).model_copy(
            update={"migrate_on_start": False}
        )
        service = build_context(settings)
        try:
            # What the service does: append (INSERT, head UPDATE, checkpoint INSERT), verify.
            service.audit.open(service.sessions)
            with transaction(service.sessions) as s:
                service.audit.append(s, actor="alice", action="extract.request")
            assert service.audit.verify(service.engine).ok
            with service.engine.begin() as conn:  # and use the rest of its schema
                conn.execute(sa.text("SELECT count(*) FROM access_projects"))
            for statement in (
                *REFUSED_AS_OWNER,
                "TRUNCATE access_audit_log",
                "TRUNCATE access_audit_head",
                "ALTER TABLE access_audit_log DISABLE TRIGGER USER",
                "DROP TRIGGER access_audit_log_append_only ON access_audit_log",
            ):
                with pytest.raises(DBAPIError) as refused, service.engine.begin() as conn:
                    conn.execute(text(statement))
                message = str(refused.value.orig)
                # The grants refuse first; the head, which the role may move forward, only
                # moves forward (the trigger).
                moves_head = statement.startswith("UPDATE access_audit_head")
                expected = ("append-only",) if moves_head else ("permission denied", "owner")
                assert any(e in message for e in expected), (statement, message)
            assert service.audit.verify(service.engine).ok
        finally:
            service.dispose()
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
        owner_engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()
