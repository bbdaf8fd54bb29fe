"""Alembic environment of the portal's session store (run through services.runtime.migrations)."""

from services.portal.storage import metadata
from services.runtime.migrations import run_env

run_env(metadata)
