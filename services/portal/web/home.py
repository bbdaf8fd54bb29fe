"""The home page: sign in, or the areas a person's roles open."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.web.context import Web

__all__ = ["home_routes"]


def home_routes(web: Web) -> APIRouter:
    router = APIRouter()

    @router.get("/", summary="Home.")
    def home(request: Request) -> Response:
        who = web.maybe_person(request)
        return web.render(request, "home.html", who, title="Family justice research portal")

    return router
