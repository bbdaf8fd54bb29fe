"""Each service's Alembic migrations run from code on SQLite and on real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from services.runtime.db import make_engine
from services.runtime.migrations import current_revision, upgrade

TOY = Path(__file__).parents[2] / "unit" / "runtime" / "toy_migrations"


def test_migrations_apply_once_and_record_the_revision_in_the_services_own_table(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine, version_table="alembic_version_toy") is None
        upgrade(engine, TOY, version_table="alembic_version_toy")
        upgrade(engine, TOY, version_table="alembic_version_toy")  # idempotent
        tables = set(inspect(engine).get_table_names())
        assert {"toy_things", "alembic_version_toy"} <= tables
        assert current_revision(engine, version_table="alembic_version_toy") == "0001"
        # another service's version table is independent of this one
        assert current_revision(engine, version_table="alembic_version_other") is None
    finally:
        engine.dispose()
