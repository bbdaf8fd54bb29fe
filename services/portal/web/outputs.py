"""The airlock's pages: a researcher asks for an output to leave the workspace, checkers
review it, and once two of them release it the project's members download it.

Every page is a view of access's workspace airlock (``/v1/projects/{id}/workspace/outputs``):
ACRO computes and checks the output there, and the API decides who may see, change or
download what. The portal only turns form fields into the API's request (``output_spec``,
``output_source``) and ACRO's record into tables a person can read (``acro_checks``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from services.portal.apis import ApiError, Caller
from services.portal.sessions import SignedIn
from services.portal.web.context import Cursor, Web, attachment, see_other
from services.portal.web.researcher import FileName, Id, Short, Text
from services.portal.web.workspace_api import workspace_items, workspace_path

__all__ = ["KINDS", "PRESETS", "acro_checks", "output_routes", "output_source", "output_spec"]

KINDS = (
    ("table", "A table (counts, or a statistic of a column, by up to four columns)"),
    ("regression", "A regression (OLS, logit or probit)"),
    ("histogram", "A histogram of one column"),
    ("survival", "A survival table"),
    ("file", "A file as the job wrote it (a report or a figure: a checker judges it)"),
)
PRESETS = (
    ("threshold-10", "Threshold 10 with dominance; failing cells suppressed"),
    ("acro", "ACRO's defaults (threshold 10, zeros disclosive); cells flagged"),
    ("opensafely", "OpenSAFELY: redact 7 or fewer, round to 5"),
)
SPEC_FIELDS = (
    "index",
    "columns",
    "values",
    "aggfunc",
    "method",
    "dependent",
    "independent",
    "column",
    "bins",
    "time",
    "status",
)
Field = Annotated[str, Form(max_length=500)]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def output_spec(kind: str, form: dict[str, str]) -> dict[str, Any]:
    """What ACRO is to compute, from the form's fields (column lists comma-separated).
    The API validates it; only what cannot be said in its words is refused here."""

    def get(name: str) -> str:
        return form.get(name, "").strip()

    if kind == "table":
        spec: dict[str, Any] = {"index": _names(get("index")), "columns": _names(get("columns"))}
        if get("values") or get("aggfunc"):
            spec.update(values=get("values") or None, aggfunc=get("aggfunc") or None)
        return spec
    if kind == "regression":
        return {
            "method": get("method") or "ols",
            "dependent": get("dependent"),
            "independent": _names(get("independent")),
        }
    if kind == "histogram":
        bins = get("bins") or "10"
        if not bins.isdigit():
            raise ValueError("bins: the number of bins must be a whole number")
        return {"column": get("column"), "bins": int(bins)}
    if kind == "survival":
        return {"time": get("time"), "status": get("status")}
    return {}


def output_source(value: str) -> dict[str, str]:
    """``query:<id>``, ``job:<id>:<file>`` or ``table:<name>`` as the API's source."""
    what, _, rest = value.partition(":")
    if what == "query" and rest:
        return {"query": rest}
    if what == "job" and ":" in rest:
        job, _, name = rest.partition(":")
        if job and name:
            return {"job": job, "file": name}
    if what == "table" and rest:
        return {"table": rest}
    raise ValueError("source: choose a query result or a job's file")


def acro_checks(record: dict[str, Any]) -> list[dict[str, Any]]:
    """ACRO's record as one row per check: how many cells it flagged (``sdc.summary``) and
    whether that failed it. A free-form file has none: a person judges it."""
    rows: dict[str, int] = {}
    for f in record.get("files") or []:
        summary = (f.get("sdc") or {}).get("summary") or {} if isinstance(f, dict) else {}
        for check, value in summary.items():
            if check == "suppressed" or isinstance(value, bool) or not isinstance(value, int):
                continue
            rows[check] = rows.get(check, 0) + value
    return [{"check": k, "flagged": v, "ok": v == 0} for k, v in sorted(rows.items())]


def acro_outcome(record: dict[str, Any]) -> dict[str, Any] | None:
    """ACRO's per-cell outcome (column -> row -> "ok" or the checks a cell fails) as a
    table: its column names and rows of (row label, outcome per column)."""
    outcome = record.get("outcome")
    if not isinstance(outcome, dict) or not outcome:
        return None
    columns = [str(c) for c in outcome]
    labels: list[str] = []
    for cells in outcome.values():
        for label in cells if isinstance(cells, dict) else {}:
            if str(label) not in labels:
                labels.append(str(label))
    by_col = {
        str(c): {str(k): str(v) for k, v in cells.items()}
        for c, cells in outcome.items()
        if isinstance(cells, dict)
    }
    rows = [(label, [by_col.get(c, {}).get(label, "") for c in columns]) for label in labels]
    return {"columns": columns, "rows": rows}


def _sources(api: Caller, project_id: str) -> list[tuple[str, str]]:
    """The workspace's results an output can come from: succeeded queries, jobs' files."""
    found = []
    for q in workspace_items(api, project_id, "queries"):
        if q["state"] == "succeeded":
            found.append((f"query:{q['id']}", f"Query {q['id'][:8]} ({q['rows']} rows)"))
    for j in workspace_items(api, project_id, "jobs"):
        if j["state"] == "succeeded":
            for f in j["outputs"]:
                found.append((f"job:{j['id']}:{f['name']}", f"Job {j['name']}: {f['name']}"))
    return found


def output_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    def base(project_id: str) -> str:
        return f"{workspace_path(project_id)}/outputs"

    def new_form(
        request: Request,
        who: SignedIn,
        project_id: str,
        form: dict[str, str],
        errors: list[dict[str, str]] | None = None,
        status: int = 200,
    ) -> Response:
        api = web.api(who)
        project = api.get("access", f"/v1/projects/{project_id}")
        return web.render(
            request,
            "researcher/output_new.html",
            who,
            status=status,
            title="Ask for an output to leave",
            project=project,
            sources=_sources(api, project_id),
            kinds=KINDS,
            presets=PRESETS,
            form=form,
            errors=errors or [],
        )

    @router.get("/projects/{project_id}/outputs/new", summary="Ask for an output to leave.")
    def new_output(
        request: Request,
        project_id: Id,
        source: Annotated[str, Query(max_length=200)] = "",
        kind: Annotated[str, Query(max_length=20)] = "table",
        who: SignedIn = person,
    ) -> Response:
        return new_form(request, who, project_id, {"source": source, "kind": kind})

    @router.post("/projects/{project_id}/outputs/new", summary="Submit it: ACRO checks it.")
    def submit_output(
        request: Request,
        project_id: Id,
        title: Short,
        source: Field = "",
        kind: Annotated[str, Form(max_length=20)] = "table",
        preset: Annotated[str, Form(max_length=20)] = "threshold-10",
        exception: Text = "",
        index: Field = "",
        columns: Field = "",
        values: Field = "",
        aggfunc: Field = "",
        method: Field = "",
        dependent: Field = "",
        independent: Field = "",
        column: Field = "",
        bins: Field = "",
        time: Field = "",
        status: Field = "",
        who: SignedIn = checked,
    ) -> Response:
        fields = {
            "index": index,
            "columns": columns,
            "values": values,
            "aggfunc": aggfunc,
            "method": method,
            "dependent": dependent,
            "independent": independent,
            "column": column,
            "bins": bins,
            "time": time,
            "status": status,
        }
        form = {"title": title, "source": source, "kind": kind, "preset": preset, **fields}
        form["exception"] = exception
        try:
            body = {
                "title": title,
                "kind": kind,
                "source": output_source(source),
                "spec": output_spec(kind, fields),
                "preset": preset,
                "exception": exception.strip() or None,
            }
            output = web.api(who).post(
                "access", base(project_id), body, timeout=web.settings.apis.check_timeout_s
            )
        except (ValueError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status in (401, 403, 404, 502):
                raise
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            code = exc.status if isinstance(exc, ApiError) else 422
            return new_form(request, who, project_id, form, [{"text": message}], code)
        return see_other(
            f"/projects/{project_id}/outputs/{output['id']}",
            f"ACRO checked your output: {output['status']}; it is waiting for two checkers",
        )

    @router.get("/projects/{project_id}/outputs/{output_id}", summary="An output and its checks.")
    def output_page(
        request: Request, project_id: Id, output_id: Id, who: SignedIn = person
    ) -> Response:
        output = web.api(who).get("access", f"{base(project_id)}/{output_id}")
        return web.render(
            request,
            "researcher/output.html",
            who,
            title=output["title"],
            output=output,
            project_id=project_id,
            checks=acro_checks(output["checks"]),
            outcome=acro_outcome(output["checks"]),
            presets=PRESETS,
        )

    @router.post(
        "/projects/{project_id}/outputs/{output_id}/exception",
        summary="Ask for an exception to a failed check, with a reason.",
    )
    def exception_request(
        project_id: Id, output_id: Id, reason: Text = "", who: SignedIn = checked
    ) -> Response:
        web.api(who).post(
            "access", f"{base(project_id)}/{output_id}/exception", {"reason": reason.strip()}
        )
        return see_other(f"/projects/{project_id}/outputs/{output_id}", "Exception requested")

    @router.post(
        "/projects/{project_id}/outputs/{output_id}/resubmit",
        summary="Resubmit a returned output: ACRO checks it again as a new revision.",
    )
    def resubmit(
        project_id: Id,
        output_id: Id,
        comment: Text = "",
        preset: Annotated[str, Form(max_length=20)] = "",
        exception: Text = "",
        who: SignedIn = checked,
    ) -> Response:
        body = {
            "comment": comment.strip(),
            "preset": preset or None,
            "exception": exception.strip() or None,
        }
        out = web.api(who).post(
            "access",
            f"{base(project_id)}/{output_id}/resubmit",
            body,
            timeout=web.settings.apis.check_timeout_s,
        )
        return see_other(
            f"/projects/{project_id}/outputs/{output_id}",
            f"Revision {out['revision']} is submitted; ACRO says {out['status']}",
        )

    @router.get(
        "/projects/{project_id}/outputs/{output_id}/files/{name}",
        summary="Download a file of an output (checkers before release, members after).",
    )
    def download(project_id: Id, output_id: Id, name: FileName, who: SignedIn = person) -> Response:
        r = web.api(who).request("access", "GET", f"{base(project_id)}/{output_id}/files/{name}")
        return attachment(r, f'attachment; filename="{name}"')

    @router.get("/checking", summary="Outputs waiting for a checker.")
    def queue(request: Request, cursor: Cursor = None, who: SignedIn = person) -> Response:
        page = web.api(who).page(
            "access", "/v1/workspace/outputs", cursor, limit=web.settings.page_size
        )
        return web.render(
            request,
            "checker/queue.html",
            who,
            title="Output checking",
            outputs=page["items"],
            next_cursor=page.get("next_cursor"),
        )

    @router.get("/checking/{project_id}/{output_id}", summary="Check one output.")
    def check_page(
        request: Request, project_id: Id, output_id: Id, who: SignedIn = person
    ) -> Response:
        out = web.api(who).get("access", f"{base(project_id)}/{output_id}")
        return web.render(
            request,
            "checker/output.html",
            who,
            title=f"Check: {out['title']}",
            output=out,
            project_id=project_id,
            checks=acro_checks(out["checks"]),
            outcome=acro_outcome(out["checks"]),
            mine=who.subject in out["approvals"],
        )

    @router.post("/checking/{project_id}/{output_id}", summary="Comment, return, approve, reject.")
    def review(
        project_id: Id,
        output_id: Id,
        decision: Annotated[str, Form(max_length=20)],
        comment: Annotated[str, Form(max_length=5000)] = "",
        who: SignedIn = checked,
    ) -> Response:
        out = web.api(who).post(
            "access",
            f"{base(project_id)}/{output_id}/reviews",
            {"decision": decision, "comment": comment},
        )
        done = {
            "released": "The output is released",
            "returned": "The output is returned to its author",
            "rejected": "The output is rejected",
        }.get(out["state"])
        if done is None:
            done = (
                "Your comment is recorded"
                if decision == "comment"
                else "Your approval is recorded; a second checker must approve too"
            )
        return see_other(f"/checking/{project_id}/{output_id}", done)

    return router
