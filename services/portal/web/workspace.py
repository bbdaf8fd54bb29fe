"""The workspace's pages: SQL queries and their previews, analysis jobs and their logs, and
dummy data to take away, all on access's workspace API under the member's own token.

A query or job refused by the API is still a page: its reason is the point (the API
records and audits it), so a refused query lands on its own page like a succeeded one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services.portal.apis import ApiError
from services.portal.sessions import SignedIn
from services.portal.web.context import Web, attachment, see_other
from services.portal.web.researcher import FileName, Id
from services.portal.web.workspace_api import workspace_items, workspace_path

__all__ = ["workspace_routes"]

Sql = Annotated[str, Form(max_length=20_000)]
Script = Annotated[str, Form(max_length=200_000)]


def workspace_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    base = workspace_path

    def page(
        request: Request,
        who: SignedIn,
        project_id: str,
        form: Mapping[str, object] | None = None,
        errors: list[dict[str, str]] | None = None,
        status: int = 200,
    ) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        workspace = api.get("access", base(project_id))
        return web.render(
            request,
            "researcher/workspace.html",
            who,
            status=status,
            title="Workspace",
            project=project,
            workspace=workspace,
            queries=workspace_items(api, project_id, "queries"),
            jobs=workspace_items(api, project_id, "jobs"),
            dummy=workspace_items(api, project_id, "dummy"),
            form=form or {},
            errors=errors or [],
        )

    @router.get("/projects/{project_id}/workspace", summary="The project's workspace.")
    def workspace(request: Request, project_id: Id, who: SignedIn = person) -> Response:
        return page(request, who, project_id)

    @router.post("/projects/{project_id}/workspace/queries", summary="Run a SQL query.")
    def run_query(
        request: Request, project_id: Id, sql: Sql = "", who: SignedIn = checked
    ) -> Response:
        api = web.api(who)
        try:
            query = api.post("access", f"{base(project_id)}/queries", {"sql": sql})
        except ApiError as exc:
            if exc.status in (401, 403, 404, 502):
                raise
            # A refused query is recorded too: show it, newest last, with its reason.
            refused = [
                q
                for q in workspace_items(api, project_id, "queries")
                if q["state"] == "refused" and q["author"] == who.subject
            ]
            if exc.status == 422 and refused:
                return see_other(
                    f"/projects/{project_id}/workspace/queries/{refused[-1]['id']}",
                    "The query was refused",
                )
            errors = [{"text": exc.message, "field": "sql"}]
            return page(request, who, project_id, {"sql": sql}, errors, exc.status)
        return see_other(f"/projects/{project_id}/workspace/queries/{query['id']}", "Query run")

    @router.get(
        "/projects/{project_id}/workspace/queries/{query_id}", summary="A query and its preview."
    )
    def query_page(
        request: Request, project_id: Id, query_id: Id, who: SignedIn = person
    ) -> Response:
        api = web.api(who)
        query = api.get("access", f"{base(project_id)}/queries/{query_id}")
        return web.render(
            request,
            "researcher/query.html",
            who,
            title="Query",
            project_id=project_id,
            query=query,
        )

    @router.post("/projects/{project_id}/workspace/jobs", summary="Submit an analysis job.")
    def submit_job(
        request: Request,
        project_id: Id,
        script: Script = "",
        name: Annotated[str, Form(max_length=200)] = "job",
        requirements: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006
        who: SignedIn = checked,
    ) -> Response:
        body = {"name": name or "job", "script": script, "requirements": requirements}
        try:
            job = web.api(who).post("access", f"{base(project_id)}/jobs", body)
        except ApiError as exc:
            if exc.status in (401, 403, 404, 502):
                raise
            errors = [{"text": exc.message, "field": "script"}]
            form = {"script": script, "name": name, "requirements": requirements}
            return page(request, who, project_id, form, errors, exc.status)
        return see_other(f"/projects/{project_id}/workspace/jobs/{job['id']}", "Job submitted")

    @router.get(
        "/projects/{project_id}/workspace/jobs/{job_id}", summary="A job: status, log, files."
    )
    def job_page(request: Request, project_id: Id, job_id: Id, who: SignedIn = person) -> Response:
        api = web.api(who)
        job = api.get("access", f"{base(project_id)}/jobs/{job_id}")
        log = None
        if job["state"] in ("succeeded", "failed"):
            log = api.request("access", "GET", f"{base(project_id)}/jobs/{job_id}/log").text
        return web.render(
            request,
            "researcher/job.html",
            who,
            title=f"Job {job['name']}",
            project_id=project_id,
            job=job,
            log=log,
        )

    @router.get("/projects/{project_id}/workspace/dummy/{name}", summary="Download a dummy table.")
    def dummy(project_id: Id, name: FileName, who: SignedIn = person) -> Response:
        r = web.api(who).request("access", "GET", f"{base(project_id)}/dummy/{name}")
        # The API names the file DUMMY_<name>, so a copy on a laptop says what it is.
        return attachment(
            r, r.headers.get("content-disposition", f'attachment; filename="DUMMY_{name}"')
        )

    return router
