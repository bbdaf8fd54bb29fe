"""Alembic environment of the audit checkpoint store (may live in its own database)."""

from services.access.storage.models import CheckpointBase
from services.runtime.migrations import run_env

run_env(CheckpointBase.metadata)
