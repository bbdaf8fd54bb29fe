"""Health, readiness and Prometheus metrics endpoints shared by every FastAPI app."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["ReadinessCheck", "health_router"]

ReadinessCheck = Callable[[], None]
"""Raises when a dependency (database, bus) is not usable; returns None when it is."""


def health_router(
    checks: Mapping[str, ReadinessCheck] | None = None,
    registry: CollectorRegistry | None = None,
) -> APIRouter:
    """``/healthz`` (process alive), ``/readyz`` (dependencies answer), ``/metrics``."""
    router = APIRouter(tags=["operations"])
    named_checks = dict(checks or {})

    @router.get("/healthz", summary="Liveness: the process is serving requests.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: every dependency answers.")
    def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        ready = True
        for name, check in named_checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; the type says which
                results[name] = f"unavailable: {type(exc).__name__}"
                ready = False
        body = {"status": "ok" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics in the text exposition format.",
        response_class=PlainTextResponse,  # documents text/plain; the route sets the version
    )
    def metrics() -> Response:
        from prometheus_client import REGISTRY

        data = generate_latest(registry or REGISTRY)
        return Response(content=data, media_type=CONTENT_TYPE_LATEST)

    return router
