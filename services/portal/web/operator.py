"""Operators: each API's readiness and the last audit verification, through the APIs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.portal.apis import ApiError
from services.portal.sessions import SignedIn
from services.portal.web.context import Web

__all__ = ["operator_routes"]


def operator_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)

    @router.get("/status", summary="The platform's status.")
    def status(request: Request, who: SignedIn = person) -> Response:
        api = web.api(who)
        audit: dict[str, Any] | None
        try:
            audit = api.get("access", "/v1/audit/verify")
            audit_problem = None
        except ApiError as exc:
            if exc.status == 401:
                raise
            audit, audit_problem = None, exc.message
        ready = []
        for name in ("ingest", "link", "access"):
            try:
                r = web.apis.client(name).get("/readyz")
                ready.append({"name": name, "ok": r.status_code == 200, "detail": r.text[:200]})
            except Exception as exc:  # an API that is down is what this page is for
                ready.append({"name": name, "ok": False, "detail": type(exc).__name__})
        return web.render(
            request,
            "operator/status.html",
            who,
            title="Status",
            audit=audit,
            audit_problem=audit_problem,
            ready=ready,
        )

    return router
