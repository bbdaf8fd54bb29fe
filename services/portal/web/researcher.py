"""Researchers: accreditation, projects, applying, extracts and their reports, outputs."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response

from services.portal.apis import ApiError, Caller
from services.portal.sessions import SignedIn
from services.portal.web.context import PageError, Web, see_other

__all__ = ["parse_cells", "researcher_routes"]

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
FileName = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=300)]


def parse_cells(text: str) -> list[dict[str, Any]]:
    """Table cells typed as lines ``row, column, count`` (column may be empty)."""
    cells = []
    for n, line in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not line or not "".join(line).strip():
            continue
        if len(line) != 3:
            raise ValueError(f"line {n}: write row, column, count")
        row, col, count = (part.strip() for part in line)
        if not count.isdigit():
            raise ValueError(f"line {n}: the count must be a whole number")
        cells.append({"row": row, "col": col or None, "count": int(count)})
    if not cells:
        raise ValueError("enter at least one cell")
    return cells


def _optional(call: Any, *args: Any) -> Any:
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
        me = _optional(api.get, "access", f"/v1/researchers/{who.subject}")
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
            extracts = _optional(api.get_all, "access", f"/v1/projects/{project_id}/extracts")
            outputs = _optional(api.get_all, "access", f"/v1/projects/{project_id}/outputs")
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
        return Response(
            r.content,
            media_type=r.headers.get("content-type", "application/octet-stream"),
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get("/projects/{project_id}/outputs/new", summary="Submit an output for checking.")
    def new_output(
        request: Request,
        project_id: Id,
        title: Annotated[str, Query(max_length=300)] = "",
        who: SignedIn = person,
    ) -> Response:
        project = web.api(who).get("access", f"/v1/projects/{project_id}")
        return web.render(
            request,
            "researcher/output_new.html",
            who,
            title="Submit an output",
            project=project,
            form={"title": title},
        )

    @router.post("/projects/{project_id}/outputs/new", summary="Submit the table.")
    def submit_output(
        request: Request,
        project_id: Id,
        title: Short,
        cells: Text,
        preset: Annotated[str, Form(max_length=20)] = "threshold-10",
        who: SignedIn = checked,
    ) -> Response:
        api = web.api(who)
        form = {"title": title, "cells": cells, "preset": preset}
        try:
            body = {
                "title": title,
                "kind": "frequency",
                "preset": preset,
                "cells": parse_cells(cells),
            }
            output = api.post("access", f"/v1/projects/{project_id}/outputs", body)
        except (ValueError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status in (401, 403, 404, 502):
                raise
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            project = api.get("access", f"/v1/projects/{project_id}")
            return web.render(
                request,
                "researcher/output_new.html",
                who,
                status=exc.status if isinstance(exc, ApiError) else 422,
                title="Submit an output",
                project=project,
                form=form,
                errors=[{"text": message, "field": "cells"}],
            )
        return see_other(
            f"/projects/{project_id}/outputs/{output['id']}",
            "Your output is submitted for checking",
        )

    @router.get("/projects/{project_id}/outputs/{output_id}", summary="An output and its checks.")
    def output_page(
        request: Request, project_id: Id, output_id: Id, who: SignedIn = person
    ) -> Response:
        api = web.api(who)
        output = api.get("access", f"/v1/projects/{project_id}/outputs/{output_id}")
        return web.render(
            request,
            "researcher/output.html",
            who,
            title=output["title"],
            output=output,
            project_id=project_id,
        )

    @router.get(
        "/projects/{project_id}/outputs/{output_id}/release", summary="Download a released table."
    )
    def released(project_id: Id, output_id: Id, who: SignedIn = person) -> Response:
        table = web.api(who).get("access", f"/v1/projects/{project_id}/outputs/{output_id}/release")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["row", "column", "value"])
        for cell in [*table["cells"], *table["totals"]]:
            writer.writerow([cell["row"], cell["col"] or "", cell["value"]])
        if not table["cells"]:
            raise PageError(404, "Nothing to download")
        return Response(
            buffer.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="output-{output_id}.csv"'},
        )

    return router
