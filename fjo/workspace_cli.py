"""``fjo workspace ...``: a researcher's thin client of the access API's workspace routes
(``/v1/projects/{id}/workspace/...``): queries next to the data (docs/workspace.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

__all__ = ["WorkspaceClient", "register", "workspace_app"]

workspace_app = typer.Typer(
    help="Analysis inside the TRE: the project's workspace (queries, jobs, dummy data, outputs).",
    no_args_is_help=True,
)

Url = Annotated[str, typer.Option(envvar="FJO_ACCESS_URL", help="Access's base URL.")]
Token = Annotated[
    str | None, typer.Option(envvar="FJO_TOKEN", help="Bearer token (a project member's).")
]
Project = Annotated[str, typer.Option("--project", envvar="FJO_PROJECT", help="Project id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")]


class WorkspaceClient:
    """The workspace routes of one project, over HTTP (``transport`` for tests)."""

    def __init__(
        self, url: str, token: str, project: str, *, client: httpx.Client | None = None
    ) -> None:
        self.base = f"/v1/projects/{project}/workspace"
        self.http = client or httpx.Client(base_url=url, timeout=120.0)
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.raw(method, path, **kw)
        return r.json() if "json" in r.headers.get("content-type", "") else r.text

    def items(self, path: str) -> Iterator[Any]:
        """Every item of a list route, following each page's ``next_cursor``."""
        cursor: str | None = None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = self.call("GET", path, params=params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.http.request(method, self.base + path, headers=self.headers, **kw)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"title": r.text[:200]}
            what = body.get("detail") or body.get("title") or r.reason_phrase
            reason = f" ({body['reason']})" if body.get("reason") else ""
            raise typer.BadParameter(f"HTTP {r.status_code}: {what}{reason}") from None
        return r


def _client(url: str, token: str | None, project: str) -> WorkspaceClient:
    if not token:
        raise typer.BadParameter(
            "give --token or FJO_TOKEN (dev: fjo token --subject me --role researcher "
            "--audience fjo-access)",
            param_hint="--token",
        )
    return WorkspaceClient(url, token, project)


def _table(columns: list[dict[str, str]], rows: list[list[Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c["name"])
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


@workspace_app.command("show")
def show(project: Project, url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """The workspace's tables, permitted egress and limits (JSON)."""
    typer.echo(json.dumps(_client(url, token, project).call("GET", ""), indent=1))


@workspace_app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the workspace's tables.")],
    project: Project,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    preview: Annotated[int, typer.Option(min=0, max=1000, help="Rows to show.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Run one SELECT next to the data; show its first rows (the result stays inside)."""
    out = _client(url, token, project).call(
        "POST", "/queries", json={"sql": sql, "preview": preview}
    )
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    _table(out["columns"], out["preview"], f"query {out['id']}: {out['rows']} row(s)")


@workspace_app.command("dummy")
def dummy(
    project: Project,
    name: Annotated[
        str | None, typer.Argument(help="A file to download, e.g. CHILD.csv (none: list them).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to save it (default DUMMY_<name>).")
    ] = None,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Dummy data to develop a script on: the extract's schema, made-up rows."""
    client = _client(url, token, project)
    if name is None:
        for f in client.items("/dummy"):
            typer.echo(f"{f['name']}\t{f['rows']} rows")
        return
    target = out or Path(f"DUMMY_{name}")
    target.write_bytes(client.raw("GET", f"/dummy/{name}").content)
    typer.echo(f"saved {target}")


job_app = typer.Typer(help="Analysis jobs: a Python script run next to the data.")
workspace_app.add_typer(job_app, name="job")


def _job_line(job: dict[str, Any]) -> str:
    why = f" ({job['reason']}: {job['detail']})" if job.get("reason") else ""
    outputs = ", ".join(f"{o['name']} {o['bytes']} B" for o in job.get("outputs", []))
    return f"job {job['id']}: {job['state']}{why}" + (f"; outputs {outputs}" if outputs else "")


@job_app.command("submit")
def job_submit(
    script: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Python file.")],
    project: Project,
    requirement: Annotated[
        list[str] | None,
        typer.Option("--requirement", "-r", help="A package of the runtime's allow-list."),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the job.")] = "job",
    wait: Annotated[bool, typer.Option(help="Wait until it has finished.")] = True,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Submit a script: it sees /data (the extract), /workspace (read-only), /output."""
    import time

    client = _client(url, token, project)
    body = {"name": name, "script": script.read_text(), "requirements": requirement or []}
    job = client.call("POST", "/jobs", json=body)
    while wait and job["state"] in ("queued", "running"):
        time.sleep(1.0)
        job = client.call("GET", f"/jobs/{job['id']}")
    typer.echo(json.dumps(job, indent=1) if as_json else _job_line(job))
    if job["state"] == "failed":
        raise typer.Exit(1)


@job_app.command("status")
def job_status(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    project: Project,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """A job's state, how it ended and its outputs."""
    job = _client(url, token, project).call("GET", f"/jobs/{job_id}")
    typer.echo(json.dumps(job, indent=1) if as_json else _job_line(job))


@job_app.command("logs")
def job_logs(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    project: Project,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """The job's log (stdout and stderr, its tail)."""
    typer.echo(_client(url, token, project).call("GET", f"/jobs/{job_id}/log"), nl=False)


outputs_app = typer.Typer(help="The airlock: outputs checked by ACRO, released by two checkers.")
workspace_app.add_typer(outputs_app, name="outputs")


def _output_line(o: dict[str, Any]) -> str:
    return (
        f"{o['id']}  {o['state']:<9} {o['status']:<6} r{o['revision']}  {o['kind']:<10} "
        f"{o['title']}  approvals: {', '.join(o['approvals']) or '-'}"
    )


@outputs_app.command("list")
def outputs_list(project: Project, url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """The workspace's outputs: state, ACRO's verdict, revision, approvals."""
    for o in _client(url, token, project).items("/outputs"):
        typer.echo(_output_line(o))


@outputs_app.command("submit")
def outputs_submit(
    project: Project,
    title: Annotated[str, typer.Option(help="What the output shows.")],
    kind: Annotated[str, typer.Option(help="table, regression, histogram, survival, file.")],
    query: Annotated[str | None, typer.Option(help="Source: a query's id.")] = None,
    job: Annotated[str | None, typer.Option(help="Source: a job's id (with --file).")] = None,
    file: Annotated[str | None, typer.Option(help="The job's output file.")] = None,
    table: Annotated[str | None, typer.Option(help="Source: a table of the extract.")] = None,
    spec: Annotated[str, typer.Option(help='What to compute, JSON: {"index": ["SEX"]}.')] = "{}",
    preset: Annotated[str, typer.Option(help="acro, threshold-10 or opensafely.")] = "acro",
    exception: Annotated[str | None, typer.Option(help="Why to release it if it fails.")] = None,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Ask for an output to leave: ACRO computes and checks it from its source."""
    source = {"query": query, "job": job, "file": file, "table": table}
    body = {
        "title": title,
        "kind": kind,
        "source": {k: v for k, v in source.items() if v is not None},
        "spec": json.loads(spec),
        "preset": preset,
        **({"exception": exception} if exception else {}),
    }
    out = _client(url, token, project).call("POST", "/outputs", json=body)
    typer.echo(json.dumps(out, indent=1) if as_json else _output_line(out))
    if not as_json:
        typer.echo(out["summary"])


@outputs_app.command("show")
def outputs_show(
    output_id: Annotated[str, typer.Argument(help="The output's id.")],
    project: Project,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """One output with ACRO's checks and its reviews (JSON)."""
    typer.echo(
        json.dumps(_client(url, token, project).call("GET", f"/outputs/{output_id}"), indent=1)
    )


@outputs_app.command("exception")
def outputs_exception(
    output_id: Annotated[str, typer.Argument(help="The output's id.")],
    reason: Annotated[str, typer.Argument(help="Why it should leave although it fails.")],
    project: Project,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """The author asks for an exception to a failed check."""
    out = _client(url, token, project).call(
        "POST", f"/outputs/{output_id}/exception", json={"reason": reason}
    )
    typer.echo(_output_line(out))


@outputs_app.command("resubmit")
def outputs_resubmit(
    output_id: Annotated[str, typer.Argument(help="The output's id.")],
    project: Project,
    spec: Annotated[str | None, typer.Option(help="A changed spec (JSON).")] = None,
    comment: Annotated[str, typer.Option(help="What changed, for the checkers.")] = "",
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Resubmit a returned output (checked again as a new revision)."""
    body: dict[str, Any] = {"comment": comment}
    if spec is not None:
        body["spec"] = json.loads(spec)
    out = _client(url, token, project).call("POST", f"/outputs/{output_id}/resubmit", json=body)
    typer.echo(_output_line(out))


@outputs_app.command("review")
def outputs_review(
    output_id: Annotated[str, typer.Argument(help="The output's id.")],
    decision: Annotated[str, typer.Argument(help="comment, return, approve or reject.")],
    project: Project,
    comment: Annotated[str, typer.Option(help="Why (required to comment or return).")] = "",
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """An independent output checker's decision on the current revision."""
    out = _client(url, token, project).call(
        "POST", f"/outputs/{output_id}/reviews", json={"decision": decision, "comment": comment}
    )
    typer.echo(_output_line(out))


@outputs_app.command("download")
def outputs_download(
    output_id: Annotated[str, typer.Argument(help="The output's id.")],
    name: Annotated[str, typer.Argument(help="One of its files.")],
    project: Project,
    out: Annotated[Path | None, typer.Option(help="Where to save it.")] = None,
    url: Url = "http://127.0.0.1:8000",
    token: Token = None,
) -> None:
    """Download a file of a released output (checkers: before release, to judge it)."""
    target = out or Path(name)
    target.write_bytes(
        _client(url, token, project).raw("GET", f"/outputs/{output_id}/files/{name}").content
    )
    typer.echo(f"saved {target}")


def register(app: typer.Typer) -> None:
    """Add ``fjo workspace`` to the main command."""
    app.add_typer(workspace_app, name="workspace")
