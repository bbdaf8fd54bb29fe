"""Output checkers: the queue, each output with its automated checks, approve or return."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services.portal.sessions import SignedIn
from services.portal.web.context import Cursor, Web, see_other
from services.portal.web.researcher import Id

__all__ = ["checker_routes"]


def checker_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    @router.get("/checking", summary="Outputs waiting for a checker.")
    def queue(request: Request, cursor: Cursor = None, who: SignedIn = person) -> Response:
        page = web.api(who).page("access", "/v1/outputs", cursor, limit=web.settings.page_size)
        return web.render(
            request,
            "checker/queue.html",
            who,
            title="Output checking",
            outputs=page["items"],
            next_cursor=page.get("next_cursor"),
        )

    @router.get("/checking/{project_id}/{output_id}", summary="Check one output.")
    def output(request: Request, project_id: Id, output_id: Id, who: SignedIn = person) -> Response:
        out = web.api(who).get("access", f"/v1/projects/{project_id}/outputs/{output_id}")
        return web.render(
            request,
            "checker/output.html",
            who,
            title=f"Check: {out['title']}",
            output=out,
            project_id=project_id,
            mine=any(r["checker"] == who.subject for r in out["reviews"]),
        )

    @router.post("/checking/{project_id}/{output_id}", summary="Approve, or return for changes.")
    def review(
        project_id: Id,
        output_id: Id,
        decision: Annotated[Literal["approve", "reject"], Form()],
        comment: Annotated[str, Form(max_length=5000)] = "",
        who: SignedIn = checked,
    ) -> Response:
        out = web.api(who).post(
            "access",
            f"/v1/projects/{project_id}/outputs/{output_id}/reviews",
            {"decision": decision, "comment": comment},
        )
        done = {
            "released": "The output is released",
            "rejected": "The output is returned to its author",
        }.get(out["state"], "Your approval is recorded; a second checker must approve too")
        return see_other(f"/checking/{project_id}/{output_id}", done)

    return router
