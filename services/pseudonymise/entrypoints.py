"""Thin entrypoints of the pseudonymise service: build from settings, then serve."""

from __future__ import annotations

from fastapi import FastAPI

from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.app import create_app as create_base_app

__all__ = ["create_app"]


def create_app(settings: PseudonymiseSettings | None = None) -> FastAPI:
    """The pseudonymise HTTP API (operational routes only until the service's own routes land)."""
    settings = settings or PseudonymiseSettings()
    return create_base_app(title="fjo pseudonymise", version="0.1.0")
