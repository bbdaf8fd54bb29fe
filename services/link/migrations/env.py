"""Alembic environment of the link schema (run through services.runtime.migrations)."""

from services.link.storage import metadata
from services.runtime.migrations import run_env

run_env(metadata)
