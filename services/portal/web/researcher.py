"""Researchers: accreditation, projects, applying, extracts and their reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response

from services.portal.apis import ApiError, Caller
from services.portal.sessions import SignedIn
from services.portal.web.context import Web, attachment, see_other

__all__ = ["FileName", "Id", "Short", "Text", "optional", "researcher_routes"]

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
FileName = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=300)]


def optional(call: Any, *args: Any) -> Any:
    """What the API gives, or None where it refuses this person (403/404/409)."""
    try:
        return call(*args)
    except ApiError as exc:
        if exc.status in (403, 404, 409):
            return None
        raise


def researcher_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    def catalogue(api: Caller) -> dict[str, Any]:
        result: dict[str, Any] = api.get("access", "/v1/catalogue")
        return result

    @router.get("/projects", summary="My accreditation and projects.")
    def my_projects(request: Request, who: SignedIn = person) -> Response:
        api = web.api(who)
        me = optional(api.get, "access", f"/v1/researchers/{who.subject}")
        projects = api.get_all("access", "/v1/projects")
        return web.render(
            request,
            "researcher/projects.html",
            who,
            title="Your projects",
            me=me,
            projects=projects,
        )

    @router.get("/projects/new", summary="Apply for a project.")
    def new_project(request: Request, who: SignedIn = person) -> Response:
        return web.render(
            request,
            "researcher/apply.html",
            who,
            title="Apply for a project",
            catalogue=catalogue(web.api(who)),
            form={},
        )

    @router.post("/projects/new", summary="Save the application as a draft.")
    def create_project(
        request: Request,
        title: Short,
        summary: Text = "",
        legal_basis: Text = "",
        dsa_reference: Annotated[str, Form(max_length=100)] = "",
        window_start: Annotated[str, Form(max_length=10)] = "",
        window_end: Annotated[str, Form(max_length=10)] = "",
        members: Short = "",
        datasets: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006
        variables: Annotated[list[str], Form(max_length=300)] = [],  # noqa: B006
        who: SignedIn = checked,
    ) -> Response:
        api = web.api(who)
        body: dict[str, Any] = {
            "title": title,
            "summary": summary,
            "datasets": datasets,
            "variables": variables,
            "legal_basis": legal_basis or None,
            "dsa_reference": dsa_reference or None,
            "window_start": window_start or None,
            "window_end": window_end or None,
        }
        try:
            project = api.post("access", "/v1/projects", body)
            for member in [m.strip() for m in members.split(",") if m.strip()]:
                api.post("access", f"/v1/projects/{project['id']}/members", {"subject": member})
        except ApiError as exc:
            if exc.status in (401, 403, 404, 502):
                raise
            return web.render(
                request,
                "researcher/apply.html",
                who,
                status=exc.status,
                title="Apply for a project",
                catalogue=catalogue(api),
                form={**body, "members": members},
                errors=[{"text": exc.message}],
            )
        return see_other(f"/projects/{project['id']}", "Your application is saved as a draft")

    @router.get("/projects/{project_id}", summary="One project and what can be done with it.")
    def project_page(request: Request, project_id: Id, who: SignedIn = person) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        extracts = outputs = None
        if project["state"] == "active":
            extracts = optional(api.get_all, "access", f"/v1/projects/{project_id}/extracts")
            outputs = optional(
                api.get_all, "access", f"/v1/projects/{project_id}/workspace/outputs"
            )
        return web.render(
            request,
            "researcher/project.html",
            who,
            title=project["title"],
            project=project,
            extracts=extracts,
            outputs=outputs,
        )

    def lifecycle(path: str, done: str) -> Any:
        def act(project_id: Id, who: SignedIn = checked) -> Response:
            web.api(who).post("access", f"/v1/projects/{project_id}/{path}")
            return see_other(f"/projects/{project_id}", done)

        return act

    router.post("/projects/{project_id}/submit", summary="Submit a draft.")(
        lifecycle("submit", "Your application is submitted to the panel")
    )
    router.post("/projects/{project_id}/activate", summary="Start work on an approved project.")(
        lifecycle("activate", "The project is active")
    )

    @router.post("/projects/{project_id}/extracts", summary="Request an extract.")
    def request_extract(project_id: Id, who: SignedIn = checked) -> Response:
        extract = web.api(who).post("access", f"/v1/projects/{project_id}/extracts")
        return see_other(f"/projects/{project_id}/extracts/{extract['id']}", "Extract requested")

    @router.get("/projects/{project_id}/extracts/{extract_id}", summary="An extract's reports.")
    def extract_page(
        request: Request, project_id: Id, extract_id: Id, who: SignedIn = person
    ) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        extract = api.get("access", f"/v1/projects/{project_id}/extracts/{extract_id}")
        manifest = dictionary = None
        if extract["state"] == "succeeded":
            base = f"/v1/projects/{project_id}/extracts/{extract_id}/files"
            manifest = api.get("access", f"{base}/manifest.json")
            dictionary = api.get("access", f"{base}/data_dictionary.json")
        return web.render(
            request,
            "researcher/extract.html",
            who,
            title="Extract",
            project=project,
            extract=extract,
            manifest=manifest,
            dictionary=dictionary,
        )

    @router.get(
        "/projects/{project_id}/extracts/{extract_id}/files/{name}", summary="Download a file."
    )
    def download(
        project_id: Id, extract_id: Id, name: FileName, who: SignedIn = person
    ) -> Response:
        r = web.api(who).request(
            "access", "GET", f"/v1/projects/{project_id}/extracts/{extract_id}/files/{name}"
        )
        return attachment(r, f'attachment; filename="{name}"')

    return router
