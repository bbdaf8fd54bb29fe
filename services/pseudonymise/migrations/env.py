"""Alembic environment of the pseudonymise schema (run through services.runtime.migrations)."""

from services.runtime.delivery import runtime_metadata
from services.runtime.migrations import run_env

run_env(runtime_metadata)
