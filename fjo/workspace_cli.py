"""``fjo workspace ...``: a researcher's thin client of the access API's workspace routes
(``/v1/projects/{id}/workspace/...``): queries next to the data (docs/workspace.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

__all__ = ["WorkspaceClient", "register", "workspace_app"]

workspace_app = typer.Typer(
    help="Analysis inside the TRE: the project's workspace (queries, jobs, dummy data).",
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
        for f in client.call("GET", "/dummy"):
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


def register(app: typer.Typer) -> None:
    """Add ``fjo workspace`` to the main command."""
    app.add_typer(workspace_app, name="workspace")
