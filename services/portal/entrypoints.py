"""Thin entrypoints of the portal: build the web context from settings, serve the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal.apis import ApiError, Apis
from services.portal.config import PortalSettings
from services.portal.oidc import OidcClient
from services.portal.sessions import SessionStore
from services.portal.web.auth import auth_routes
from services.portal.web.context import PageError, SignInRequired, Web
from services.portal.workers import WorkerProbes
from services.runtime.app import create_app as create_base_app
from services.runtime.assets import fetched_assets
from services.runtime.db import make_engine, make_session_factory
from services.runtime.migrations import upgrade

__all__ = ["MIGRATIONS", "VERSION_TABLE", "assets_dir", "create_app", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_portal"
_STATIC = Path(__file__).parent / "static"


def migrate(db: object) -> None:
    """The session store's schema, up to date (idempotent)."""
    upgrade(db, MIGRATIONS, version_table=VERSION_TABLE)  # type: ignore[arg-type]


def assets_dir(settings: PortalSettings) -> Path:
    """govuk-frontend's compiled assets: configured, else the build step's cache (fetched by
    ``scripts/assets.sh`` if missing: the portal never loads them from a CDN)."""
    return fetched_assets("govuk", settings.assets_dir)


_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(
    settings: PortalSettings | None = None,
    *,
    api_transport: httpx.BaseTransport | None = None,
) -> FastAPI:
    """The portal. ``api_transport`` replaces the network to the APIs (tests in one process)."""
    settings = settings or PortalSettings()
    engine = make_engine(settings.database_url)
    if settings.migrate_on_start:
        migrate(engine)
    from datetime import timedelta

    web = Web(
        settings=settings,
        store=SessionStore(
            make_session_factory(engine), ttl=timedelta(seconds=settings.session_ttl_s)
        ),
        oidc=OidcClient(settings.oidc),
        apis=Apis(settings.apis, transport=api_transport),
        probes=WorkerProbes(settings.status_workers),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        web.apis.close()
        web.probes.close()
        engine.dispose()

    def database_ready() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    app = create_base_app(
        title="fjo portal",
        version="0.1.0",
        description="Web pages for researchers, the panel, data controllers, output checkers, "
        "clerical reviewers and operators, on the services' own APIs.",
        readiness={"database": database_ready},
        lifespan=lifespan,
        api_docs=False,  # pages, not an API: no OpenAPI document or its viewers
    )
    app.state.web = web
    assets = assets_dir(settings)
    app.mount("/static", StaticFiles(directory=assets), name="govuk")
    app.mount("/assets", StaticFiles(directory=assets / "assets"), name="govuk-assets")
    app.mount("/portal-static", StaticFiles(directory=_STATIC), name="portal-static")

    from services.portal.web.pages import page_routes

    app.include_router(auth_routes(web))
    for router in page_routes(web):
        app.include_router(router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(("/static", "/assets", "/portal-static")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        from urllib.parse import quote

        return RedirectResponse(f"/sign-in?next={quote(exc.next_path)}", status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return web.error_page(request, exc.status, exc.title, exc.message)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return web.api_error_page(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return web.error_page(request, 404, "Page not found", "There is nothing here.")
        if exc.status_code == 405:
            return web.error_page(request, 405, "Not allowed", "That page takes no such request.")
        return web.error_page(request, exc.status_code, "That did not work", str(exc.detail))

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return web.error_page(
            request, 422, "Check what you entered", "Some of the form or address is not valid."
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app
