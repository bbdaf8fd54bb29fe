"""Thin entrypoints of the ingest service: build from settings, then serve."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest.config import IngestSettings
from services.runtime.app import create_app as create_base_app

__all__ = ["create_app"]


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """The ingest HTTP API (operational routes only until the service's own routes land)."""
    settings = settings or IngestSettings()
    return create_base_app(title="fjo ingest", version="0.1.0")
