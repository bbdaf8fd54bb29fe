"""Thin entrypoints of the link service: the worker, and the clerical-review HTTP API."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from services.link.bootstrap import build_service, build_worker
from services.link.config import LinkSettings
from services.link.service import LinkService
from services.runtime.app import create_app as create_base_app
from services.runtime.auth import DevIssuer, Principal, TokenVerifier, bearer_principal
from services.runtime.bus.api import Bus
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.publishing import publish_all
from services.runtime.settings import Environment
from services.runtime.telemetry import configure_logging, setup_telemetry
from services.runtime.worker_process import bus_from_settings, run_until_signalled

__all__ = ["create_app", "run_worker"]


def run_worker(settings: LinkSettings | None = None, stop: threading.Event | None = None) -> None:
    """Link every incoming record's keys against the spine until stopped."""
    settings = settings or LinkSettings()
    configure_logging(settings.telemetry.log_level, json_lines=settings.telemetry.log_json)
    setup_telemetry(settings.service_name, otlp_endpoint=settings.telemetry.otlp_endpoint)
    bus = bus_from_settings(settings.bus)
    engine = make_engine(settings.database_url)

    def close() -> None:
        bus.close()
        engine.dispose()

    worker = build_worker(settings, bus, engine)
    run_until_signalled(worker, name="link", stop=stop, on_exit=close)


def default_verifier(settings: LinkSettings) -> TokenVerifier:
    """The organisation's JWKS when configured; the local dev issuer in dev/test only."""
    if settings.auth.jwks_url:
        return TokenVerifier(
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            jwks_url=settings.auth.jwks_url,
        )
    if settings.environment is Environment.PROD:
        raise RuntimeError("no JWKS URL configured")
    issuer = DevIssuer.from_file(settings.auth.dev_key_file, issuer=settings.auth.issuer)
    return issuer.verifier(audience=settings.auth.audience)


class Decision(BaseModel):
    """A reviewer's decision on one queued record."""

    accept: bool = Field(description="True links to the candidate; False leaves it unlinked.")


def create_app(
    settings: LinkSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    bus: Bus | None = None,
) -> FastAPI:
    """The clerical-review API: list open items, accept or reject (re-published, audited)."""
    settings = settings or LinkSettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        state["engine"] = engine
        state["service"] = build_service(settings, engine)
        state["sessions"] = make_session_factory(engine)
        state["bus"] = bus or bus_from_settings(settings.bus)
        state["producer"] = state["bus"].producer()
        try:
            yield
        finally:
            state["producer"].close()
            if bus is None:
                state["bus"].close()
            engine.dispose()

    cached: list[TokenVerifier] = [verifier] if verifier is not None else []

    def verifier_provider() -> TokenVerifier:
        if not cached:
            cached.append(default_verifier(settings))
        return cached[0]

    authenticated: Callable[..., Principal] = bearer_principal(verifier_provider)

    def reviewer(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.has_role(settings.auth.reviewer_role):
            raise HTTPException(403, "the link-reviewer role is required")
        return principal

    app = create_base_app(title="fjo link", version="0.1.0", lifespan=lifespan)

    @app.get("/review", tags=["review"])
    def list_reviews(
        _who: Annotated[Principal, Depends(reviewer)], limit: int = 100
    ) -> list[dict[str, Any]]:
        """Open clerical-review items: pseudonymous record and candidate tokens only."""
        service: LinkService = state["service"]
        with state["sessions"]() as session:
            return service.open_reviews(session, limit=min(max(limit, 1), 1000))

    @app.post("/review/{record_token}", tags=["review"])
    def decide(
        record_token: str, body: Decision, who: Annotated[Principal, Depends(reviewer)]
    ) -> dict[str, Any]:
        """Accept or reject the queued link; the new result is published and audited."""
        service: LinkService = state["service"]
        with transaction(state["sessions"]) as session:
            try:
                messages = service.decide(
                    session, record_token, accept=body.accept, reviewer=who.subject
                )
            except KeyError:
                raise HTTPException(404, "no review item for this record") from None
            publish_all(state["producer"], messages)
            state["producer"].flush()
        return {"record_token": record_token, "accepted": body.accept, "published": len(messages)}

    return app
