"""Apply the access schema's migrations (and the checkpoint store's, wherever it lives)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from services.runtime.migrations import upgrade

__all__ = ["CHECKPOINT_VERSION_TABLE", "VERSION_TABLE", "migrate", "migrate_checkpoints"]

_HERE = Path(__file__).resolve().parent.parent
VERSION_TABLE = "access_alembic_version"
CHECKPOINT_VERSION_TABLE = "access_checkpoint_alembic_version"


def migrate(engine: Engine | str) -> None:
    """Bring the access schema, and a local checkpoint table, to the newest revision.

    A checkpoint store kept in another database is migrated by ``migrate_checkpoints``
    (the service does it at start-up).
    """
    upgrade(engine, _HERE / "migrations", version_table=VERSION_TABLE)
    migrate_checkpoints(engine)


def migrate_checkpoints(engine: Engine | str) -> None:
    """Bring the audit checkpoint store to the newest revision (idempotent)."""
    upgrade(engine, _HERE / "checkpoint_migrations", version_table=CHECKPOINT_VERSION_TABLE)
