"""The public register: the approved projects and their released outputs, for anyone, signed
in or not (the access API's ``/v1/register/projects``, which answers without a token)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.apis import ApiError
from services.portal.web.context import Cursor, Web

__all__ = ["register_routes"]


def register_routes(web: Web) -> APIRouter:
    router = APIRouter()

    @router.get("/register", summary="The public register of projects and released outputs.")
    def register(request: Request, cursor: Cursor = None) -> Response:
        params: dict[str, str | int] = {"limit": web.settings.page_size}
        if cursor:
            params["cursor"] = cursor
        try:
            page = web.apis.public("access", "/v1/register/projects", **params).json()
        except ApiError as exc:
            return web.error_page(
                request,
                exc.status,
                "The register cannot be shown",
                exc.message,
            )
        return web.render(
            request,
            "register.html",
            web.maybe_person(request),
            title="Public register of projects",
            projects=page["items"],
            next_cursor=page.get("next_cursor"),
            first_page=cursor is None,
        )

    @router.get("/register.csv", summary="The public register as CSV.")
    def register_csv(request: Request) -> Response:
        try:
            answer = web.apis.public("access", "/v1/register/projects.csv")
        except ApiError as exc:
            return web.error_page(request, exc.status, "The register cannot be shown", exc.message)
        return Response(
            answer.content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="fjo-register.csv"'},
        )

    return router
