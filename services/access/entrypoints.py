"""Thin entrypoints of the access service: build from settings, then serve."""

from __future__ import annotations

from fastapi import FastAPI

from services.access.config import AccessSettings
from services.runtime.app import create_app as create_base_app

__all__ = ["create_app"]


def create_app(settings: AccessSettings | None = None) -> FastAPI:
    """The access HTTP API (operational routes only until the service's own routes land)."""
    settings = settings or AccessSettings()
    return create_base_app(title="fjo access", version="0.1.0")
