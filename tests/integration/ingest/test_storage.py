"""Ingest's schema: the Alembic migration builds exactly the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from services.ingest.entrypoints import migrate
from services.ingest.storage import repository as repo
from services.ingest.storage.models import VERSION_TABLE, Base
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.migrations import current_revision

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "ingest" / "migrations"
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_the_migration_creates_the_models_schema_and_runs_once(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        migrate(engine)  # idempotent

        assert current_revision(engine, version_table=VERSION_TABLE) == HEAD
        assert {"ingest_deliveries", "ingest_delivery_errors", "ingest_accepted_records"} <= set(
            inspect(engine).get_table_names()
        )
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_claiming_record_keys_returns_only_the_new_ones(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        sessions = make_session_factory(engine)
        now = datetime.now(UTC)
        common = {"source": "cafcass-cymru", "record_type": "child", "now": now}
        with transaction(sessions) as session:
            first = repo.claim_records(
                session, delivery_id="d1", rows=[("A", 1, 1), ("B", 1, 2)], **common
            )
        with transaction(sessions) as session:
            second = repo.claim_records(
                session, delivery_id="d2", rows=[("B", 1, 1), ("B", 2, 2), ("C", 1, 3)], **common
            )
            holders = repo.holders_of(
                session, source="cafcass-cymru", record_type="child", keys=[("B", 1), ("Z", 1)]
            )

        assert first == {("A", 1), ("B", 1)}
        assert second == {("B", 2), ("C", 1)}
        assert holders == {("B", 1): ("d1", 2)}
    finally:
        engine.dispose()
