"""FastAPI app factory shared by every service's ``api`` entrypoint.

Gives each app the same operational surface (health, readiness, metrics), the one
problem+json error shape (RFC 9457) and request tracing, so services add only their routes.
Routes authenticate before FastAPI reads their body (``AuthenticatedRoute``): the app's own
routes are of that class, routers must say so (``APIRouter(route_class=AuthenticatedRoute)``),
and an app whose authenticated route would read the body first refuses to start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.runtime.api_docs import install_api_docs
from services.runtime.assets import fetched_assets
from services.runtime.auth import AuthenticatedRoute, routes_not_authenticating_first
from services.runtime.health import ReadinessCheck, health_router
from services.runtime.pagination import INVALID_CURSOR, InvalidCursor
from services.runtime.problems import problem_type, status_problem_type

__all__ = ["PROBLEM_JSON", "PROBLEM_SCHEMA", "create_app", "problem_response"]

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document: every error fjo's APIs answer.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem."},
        "title": {"type": "string", "description": "Short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "This occurrence, in words."},
        "errors": {
            "type": "array",
            "description": "Request validation (422): where and what, never the input.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
"""The JSON Schema of ``problem_response`` documents, as the OpenAPI documents give it."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def problem_response(
    status: int,
    title: str,
    *,
    detail: str | None = None,
    type_: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document; the only error shape fjo's APIs return. Its ``type`` is
    ``type_`` (``problem_type(slug)``), else ``extra``'s, else the status's own."""
    named = (extra or {}).get("type")
    body: dict[str, Any] = {
        "type": type_ or (named if isinstance(named, str) else status_problem_type(status)),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if extra:
        body.update((key, value) for key, value in extra.items() if key != "type")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = exc.detail if isinstance(exc.detail, str) else "Error"
    extra = exc.detail if isinstance(exc.detail, dict) else None
    return problem_response(exc.status_code, title, extra=extra, headers=exc.headers)


async def _validation_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: the offending input may be an identifier, so it is not echoed.
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem_response(422, "Request is not valid", extra={"errors": errors})


async def _invalid_cursor(_request: Request, exc: Exception) -> JSONResponse:
    # Any list's cursor, wherever it failed to decode: the client's mistake, never a 500.
    return problem_response(
        422,
        "Invalid cursor",
        detail="pass next_cursor from the previous page unchanged",
        type_=problem_type(INVALID_CURSOR),
    )


async def _unhandled_exception(_request: Request, exc: Exception) -> JSONResponse:
    import logging

    logging.getLogger("fjo.api").error("unhandled error", extra={"error_type": type(exc).__name__})
    return problem_response(500, "Internal error")


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above answer: every 4xx/5xx is
    ``application/problem+json`` (FastAPI documents its 422 as plain JSON of another shape),
    and every operation behind a bearer token may answer 401."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = generate()
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if operation.get("security") and "401" not in responses:
                    responses["401"] = {"description": "No valid bearer token."}
                for status, response in responses.items():
                    if status[:1] not in ("4", "5"):
                        continue
                    examples = response.get("content", {}).get(PROBLEM_JSON, {})
                    response["content"] = {PROBLEM_JSON: {**examples, **problem[PROBLEM_JSON]}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    *,
    title: str,
    version: str,
    description: str = "",
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
    tracer_provider: TracerProvider | None = None,
    api_docs: bool = True,
    docs_assets: Path | None = None,
) -> FastAPI:
    """A FastAPI app with fjo's operational routes, error handling and request tracing
    (``tracer_provider`` defaults to the process's global one).

    An API (``api_docs``) serves its OpenAPI document with Swagger UI at ``/docs`` and ReDoc
    at ``/redoc``, their assets from ``docs_assets`` (default: the build step's cache,
    ``scripts/assets.sh api-docs``); with ``api_docs=False`` (the portal's pages) none of them.
    """

    @asynccontextmanager
    async def _no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    inner = lifespan or _no_lifespan

    @asynccontextmanager
    async def _checked_lifespan(app: FastAPI) -> AsyncIterator[None]:
        late = routes_not_authenticating_first(app)
        if late:
            raise RuntimeError(
                "these routes would read the body before authenticating; build their router "
                "with route_class=AuthenticatedRoute: " + "; ".join(late)
            )
        async with inner(app):
            yield

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=_checked_lifespan,
        # FastAPI's own pages load their scripts from a CDN: install_api_docs serves them.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if api_docs else None,
    )
    # Routes declared on the app itself (``@app.post``) authenticate before the body is read.
    app.router.route_class = AuthenticatedRoute
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_exception)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(Exception, _unhandled_exception)
    app.include_router(health_router(readiness))
    _document_problems(app)
    if api_docs:
        install_api_docs(app, fetched_assets("api-docs", docs_assets))
    # A SERVER span per request, continuing the caller's traceparent: the root of the trace
    # that the bus carries on through every service.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", tracer_provider=tracer_provider
    )
    return app
