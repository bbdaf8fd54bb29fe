"""The information governance panel and the data controllers: queues, review, decisions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services.portal.apis import ApiError
from services.portal.sessions import SignedIn
from services.portal.web.context import Cursor, Web, see_other
from services.portal.web.researcher import Id

__all__ = ["panel_routes"]

Comment = Annotated[str, Form(max_length=5000)]


def _variables(catalogue: dict[str, Any], requested: dict[str, Any]) -> list[dict[str, Any]]:
    """The requested variables with what the catalogue says of them, for the panel to weigh
    against the purpose."""
    known = {
        v["name"]: {**v, "dataset": d["name"]}
        for d in catalogue["datasets"]
        for v in d["variables"]
    }
    return [
        known.get(name, {"name": name, "description": "not in the catalogue"})
        for name in requested.get("variables", [])
    ]


def panel_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    @router.get("/panel", summary="Projects waiting for the panel.")
    def queue(request: Request, cursor: Cursor = None, who: SignedIn = person) -> Response:
        page = web.api(who).page("access", "/v1/projects", cursor, limit=web.settings.page_size)
        projects = page["items"]
        waiting = [p for p in projects if p["state"] == "submitted"]
        decided = [p for p in projects if p["state"] not in ("submitted", "draft")]
        return web.render(
            request,
            "panel/queue.html",
            who,
            title="Panel",
            waiting=waiting,
            decided=decided,
            next_cursor=page.get("next_cursor"),
        )

    def review_page(
        request: Request, who: SignedIn, project_id: str, *, status: int = 200, errors: Any = ()
    ) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        catalogue = api.get("access", "/v1/catalogue")
        return web.render(
            request,
            "panel/review.html",
            who,
            status=status,
            title=f"Review: {project['title']}",
            project=project,
            variables=_variables(catalogue, project["requested"]),
            default_until=(date.today() + timedelta(days=365)).isoformat(),
            errors=list(errors),
        )

    @router.get("/panel/{project_id}", summary="Review one project.")
    def review(request: Request, project_id: Id, who: SignedIn = person) -> Response:
        return review_page(request, who, project_id)

    @router.post("/panel/{project_id}/approve", summary="Approve with conditions.")
    def approve(
        request: Request,
        project_id: Id,
        access_until: Annotated[str, Form(max_length=10)],
        conditions: Comment = "",
        members: Annotated[list[str], Form(max_length=100)] = [],  # noqa: B006
        egress: Annotated[list[str], Form(max_length=5)] = [],  # noqa: B006
        who: SignedIn = checked,
    ) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        r = project["requested"]
        body = {
            "datasets": r.get("datasets", []),
            "variables": r.get("variables", []),
            "window_start": r.get("window_start"),
            "window_end": r.get("window_end"),
            "members": members,
            "access_until": access_until,
            "quasi_identifiers": project["quasi_identifiers"],
            "conditions": conditions,
            "egress": egress,  # off unless the panel ticks it; the API knows the types
        }
        try:
            api.post("access", f"/v1/projects/{project_id}/approve", body)
        except ApiError as exc:
            if exc.status in (401, 403, 404, 502):
                raise
            return review_page(
                request, who, project_id, status=exc.status, errors=[{"text": exc.message}]
            )
        return see_other(f"/panel/{project_id}", "The project is approved")

    def decision(kind: str, done: str) -> Any:
        def decide(project_id: Id, comment: Comment = "", who: SignedIn = checked) -> Response:
            web.api(who).post("access", f"/v1/projects/{project_id}/{kind}", {"comment": comment})
            return see_other(f"/panel/{project_id}", done)

        return decide

    router.post("/panel/{project_id}/return", summary="Return with comments.")(
        decision("return", "The project is returned to its owner")
    )
    router.post("/panel/{project_id}/reject", summary="Reject.")(
        decision("reject", "The project is rejected")
    )

    @router.get("/sign-off", summary="Projects waiting for a data controller's sign-off.")
    def sign_off_queue(request: Request, cursor: Cursor = None, who: SignedIn = person) -> Response:
        page = web.api(who).page("access", "/v1/projects", cursor, limit=web.settings.page_size)
        projects = page["items"]
        return web.render(
            request,
            "panel/sign_off_queue.html",
            who,
            title="Sign-off",
            waiting=[p for p in projects if p["state"] == "submitted"],
            others=[p for p in projects if p["state"] != "submitted"],
            next_cursor=page.get("next_cursor"),
        )

    @router.get("/sign-off/{project_id}", summary="Sign one project off.")
    def sign_off_page(request: Request, project_id: Id, who: SignedIn = person) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        catalogue = api.get("access", "/v1/catalogue")
        return web.render(
            request,
            "panel/sign_off.html",
            who,
            title=f"Sign off: {project['title']}",
            project=project,
            variables=_variables(catalogue, project["requested"]),
        )

    @router.post("/sign-off/{project_id}", summary="Sign the project off (audited).")
    def sign_off(project_id: Id, comment: Comment = "", who: SignedIn = checked) -> Response:
        web.api(who).post("access", f"/v1/projects/{project_id}/sign-offs", {"comment": comment})
        return see_other(f"/sign-off/{project_id}", "You have signed the project off")

    return router
