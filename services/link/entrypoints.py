"""Thin entrypoint of the link service's clerical-review HTTP API (its worker is built by
``services.link.bootstrap.build_worker``).

Nothing is created at import time: ``create_app`` builds the app, and its lifespan opens the
database, loads the service, connects the bus and the token verifier, and closes them on
shutdown. The routes live in ``services.link.api``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine, text

from services.link.api import Reviews, review_router
from services.link.bootstrap import build_service
from services.link.config import LinkSettings
from services.runtime.app import create_app as create_base_app
from services.runtime.auth import (
    Principal,
    TokenVerifier,
    bearer_principal,
    configured_verifier,
)
from services.runtime.bus.api import Bus
from services.runtime.db import make_engine, make_session_factory
from services.runtime.settings import Environment
from services.runtime.worker_process import bus_from_settings

__all__ = ["create_app"]

_DESCRIPTION = """\
Clerical review of the fjo linkage: records the model could not decide on wait in a queue
with the spine record they may be. A reviewer lists them and accepts the link (the record
gets the candidate's ALF) or rejects it (the record stays unlinked); the new result is
published on the link results topic and the decision audited under the reviewer's name.
Only pseudonymous tokens are shown.

Authenticate with a bearer token carrying the reviewer role (`link-reviewer` by default).
Errors are RFC 9457 problem documents (`application/problem+json`).
"""


@dataclass(frozen=True, slots=True)
class _Resources:
    engine: Engine
    reviews: Reviews


def create_app(
    settings: LinkSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    bus: Bus | None = None,
) -> FastAPI:
    """The clerical-review API. ``verifier``/``bus`` override the configured ones (tests)."""
    settings = settings or LinkSettings()
    state: dict[str, _Resources] = {}
    verifiers: list[TokenVerifier] = [verifier] if verifier is not None else []

    def resources() -> _Resources:
        try:
            return state["r"]
        except KeyError:
            raise RuntimeError("the link app is not started (lifespan not run)") from None

    def token_verifier() -> TokenVerifier:
        # The dev issuer's key file is read (or created) on the first request, not at start:
        # `fjo up` starts every API at once, and only one of them may create that file.
        if not verifiers:
            verifiers.append(configured_verifier(settings))
        return verifiers[0]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.auth.jwks_url or settings.environment is not Environment.DEV:
            token_verifier()  # outside dev, an API without a JWKS refuses to start
        engine = make_engine(settings.database_url)
        the_bus = bus or bus_from_settings(settings.bus)
        producer = None
        try:
            service = build_service(settings, engine, start=False)
            producer = the_bus.producer()
            state["r"] = _Resources(
                engine=engine, reviews=Reviews(service, make_session_factory(engine), producer)
            )
            yield
        finally:
            state.pop("r", None)
            if producer is not None:
                producer.close()
            if bus is None:
                the_bus.close()
            engine.dispose()

    def database_ready() -> None:
        with resources().engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    app = create_base_app(
        title="fjo link",
        version="0.1.0",
        description=_DESCRIPTION,
        readiness={"database": database_ready},
        lifespan=lifespan,
        docs_assets=settings.docs_assets_dir,
    )
    principal: Callable[..., Principal] = bearer_principal(token_verifier)
    app.include_router(
        review_router(
            reviews=lambda: resources().reviews,
            principal=principal,
            reviewer_role=settings.auth.reviewer_role,
        )
    )
    return app
