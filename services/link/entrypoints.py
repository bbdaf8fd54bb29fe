"""Thin entrypoints of the link service: build from settings, then serve."""

from __future__ import annotations

from fastapi import FastAPI

from services.link.config import LinkSettings
from services.runtime.app import create_app as create_base_app

__all__ = ["create_app"]


def create_app(settings: LinkSettings | None = None) -> FastAPI:
    """The link HTTP API (operational routes only until the service's own routes land)."""
    settings = settings or LinkSettings()
    return create_base_app(title="fjo link", version="0.1.0")
