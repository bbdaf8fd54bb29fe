"""Alembic, driven from code: each service owns its schema and its migration scripts.

A service keeps its scripts in ``services/<name>/migrations/`` with an ``env.py`` that only
calls ``run_env(target_metadata)``; ``upgrade(...)`` applies them to a database. Every
service records its revision in its own version table, so services can share one
PostgreSQL database (or one SQLite file in a demo) without stepping on each other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData

from services.runtime.db import make_engine

__all__ = ["alembic_config", "current_revision", "run_env", "upgrade"]


def alembic_config(script_location: Path, *, version_table: str) -> Config:
    """An Alembic config for one service's scripts, without an ``alembic.ini`` file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["version_table"] = version_table
    return cfg


def upgrade(
    db: Engine | str, script_location: Path, *, version_table: str, revision: str = "head"
) -> None:
    """Apply a service's migrations up to ``revision`` (idempotent)."""
    engine = make_engine(db) if isinstance(db, str) else db
    cfg = alembic_config(script_location, version_table=version_table)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    if isinstance(db, str):
        engine.dispose()


def current_revision(db: Engine, *, version_table: str) -> str | None:
    """The revision a database is at for one service, or None before its first migration."""
    from alembic.runtime.migration import MigrationContext

    with db.connect() as connection:
        ctx = MigrationContext.configure(connection, opts={"version_table": version_table})
        return ctx.get_current_revision()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``: online migrations on the given connection."""
    cfg = context.config
    connection: Connection | None = cfg.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through services.runtime.migrations.upgrade")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=cfg.attributes["version_table"],
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
