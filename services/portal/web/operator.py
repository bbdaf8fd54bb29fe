"""Operators: each API's readiness, the workers' lag and dead letters, what ingest quarantined
and why, and the last audit verification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.portal.apis import ApiError, Caller
from services.portal.sessions import SignedIn
from services.portal.web.context import Web

__all__ = ["operator_routes"]


def _api_answer(api: Caller, service: str, path: str) -> tuple[Any, str | None]:
    """The API's answer to the person, or its refusal in its own words (401 signs out)."""
    try:
        return api.get(service, path), None
    except ApiError as exc:
        if exc.status == 401:
            raise
        return None, exc.message


def operator_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)

    @router.get("/status", summary="The platform's status.")
    def status(request: Request, who: SignedIn = person) -> Response:
        api = web.api(who)
        audit, audit_problem = _api_answer(api, "access", "/v1/audit/verify")
        quarantine, quarantine_problem = _api_answer(api, "ingest", "/v1/quarantine")
        ready = []
        for name in ("ingest", "link", "access"):
            try:
                r = web.apis.client(name).get("/readyz")
                ready.append({"name": name, "ok": r.status_code == 200, "detail": r.text[:200]})
            except Exception as exc:  # an API that is down is what this page is for
                ready.append({"name": name, "ok": False, "detail": type(exc).__name__})
        # The probes take no token: the portal shows them only to the roles that may see them.
        operator = any(who.has(role) for role in web.settings.status_roles)
        return web.render(
            request,
            "operator/status.html",
            who,
            title="Status",
            audit=audit,
            audit_problem=audit_problem,
            quarantine=quarantine,
            quarantine_problem=quarantine_problem,
            ready=ready,
            operator=operator,
            workers=web.probes.read() if operator else [],
            configured_workers=len(web.probes.urls),
        )

    return router
