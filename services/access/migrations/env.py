"""Alembic environment of the access schema (run through services.runtime.migrations)."""

from services.access.storage.models import Base
from services.runtime.migrations import run_env

run_env(Base.metadata)
