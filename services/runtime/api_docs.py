"""Every API's ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), their assets served by the API.

FastAPI's own pages load both from a CDN, which an air-gapped TRE cannot reach: the same pages
(FastAPI's HTML helpers) point at ``/docs/assets/``, a folder of the files ``scripts/assets.sh
api-docs`` fetches from npm with pinned integrity hashes. Swagger UI's validator badge, which
sends the document to an outside service, is off, and a Content-Security-Policy keeps the pages
to their own origin: ReDoc's sidebar shows a logo from its vendor's CDN, which the browser then
never asks for (the page hides the broken image itself).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["API_DOCS_FILES", "ASSETS_PATH", "content_security_policy", "install_api_docs"]

ASSETS_PATH = "/docs/assets"
API_DOCS_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "redoc.standalone.js",
)
"""What the pages load from ``ASSETS_PATH`` (``scripts/assets.sh`` assembles the folder)."""


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str) -> str:
    """Only this origin, and of inline scripts only the page's own (by hash): what the
    viewers need (inline styles, data: icons, ReDoc's blob: worker) and nothing from outside."""
    scripts = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return (
        f"default-src 'self'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = content_security_policy(bytes(page.body).decode())
    return page


def install_api_docs(app: FastAPI, assets: Path) -> None:
    """Serve ``app``'s OpenAPI document through Swagger UI and ReDoc from ``assets``; the app
    must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages)."""
    missing = [name for name in API_DOCS_FILES if not (assets / name).is_file()]
    if missing:
        raise RuntimeError(f"API docs assets missing from {assets}: {', '.join(missing)}")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"

    def urls(request: Request) -> tuple[str, str]:
        # Behind a path prefix (root_path) the pages and the document move with the app.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return root + openapi_url, root + ASSETS_PATH

    async def swagger_ui(request: Request) -> HTMLResponse:
        document, assets_url = urls(request)
        return _confined(
            get_swagger_ui_html(
                openapi_url=document,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{assets_url}/swagger-ui-bundle.js",
                swagger_css_url=f"{assets_url}/swagger-ui.css",
                swagger_favicon_url=f"{assets_url}/favicon-32x32.png",
                oauth2_redirect_url=oauth2_redirect,
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    async def swagger_ui_redirect(_request: Request) -> HTMLResponse:
        return _confined(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        document, assets_url = urls(request)
        return _confined(
            get_redoc_html(
                openapi_url=document,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{assets_url}/redoc.standalone.js",
                redoc_favicon_url=f"{assets_url}/favicon-32x32.png",
                with_google_fonts=False,
            )
        )

    app.mount(ASSETS_PATH, StaticFiles(directory=assets), name="api-docs-assets")
    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route(oauth2_redirect, swagger_ui_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
