"""Alembic environment of the ingest service: its own metadata, its own version table."""

from services.ingest.storage.models import Base
from services.runtime.migrations import run_env

run_env(Base.metadata)
