"""``fjo objections send``: objections, erasure requests and opt-outs to ingest.

One request from options, or many from an NDJSON file (one request per line: an opt-out list
from the spine's owner, say). Each request carries its own ``request_id``, so running the
same command again is safe: ingest answers a repeat with the first receipt. Exit status: 0
every request received; 1 one or more refused (each printed with its reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from fjo.push_cli import problem_text

__all__ = ["objections_app", "read_requests", "send_objections"]

objections_app = typer.Typer(
    help="Objections, erasure requests and opt-outs (partners).", no_args_is_help=True
)


def read_requests(path: Path) -> Iterator[dict[str, Any] | None]:
    """The requests of an NDJSON file, one per non-blank line; None for a line that is not
    a JSON object (refused here, by its position, without sending it)."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    item = None
                yield item if isinstance(item, dict) else None


def send_objections(
    requests: Iterable[dict[str, Any] | None],
    *,
    url: str,
    token: str,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """POST each request to ``/v1/objections``; counts and each refusal by position."""
    http = client or httpx.Client(base_url=url, timeout=30.0)
    out: dict[str, Any] = {"sent": 0, "received": 0, "repeated": 0, "refused": []}
    try:
        for i, request in enumerate(requests, 1):
            out["sent"] += 1
            if request is None:
                out["refused"].append({"request": i, "reason": "not a JSON object"})
                continue
            r = http.post(
                "/v1/objections", json=request, headers={"Authorization": f"Bearer {token}"}
            )
            if r.status_code == 201:
                out["received"] += 1
            elif r.status_code == 200:
                out["repeated"] += 1
            else:
                out["refused"].append({"request": i, "reason": problem_text(r)})
    finally:
        if client is None:
            http.close()
    return out


@objections_app.command("send")
def send(
    source: Annotated[str, typer.Option(help="Your agency (must match your token).")],
    file: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="NDJSON of requests, one per line (a list)."
        ),
    ] = None,
    request_id: Annotated[str | None, typer.Option(help="Your id of the one request.")] = None,
    kind: Annotated[str, typer.Option(help="objection, erasure or opt-out.")] = "objection",
    subject: Annotated[str, typer.Option(help="record, or person (spine's owner).")] = "record",
    record_type: Annotated[str | None, typer.Option("--type", help="Record type.")] = None,
    record_id: Annotated[str | None, typer.Option(help="Your id of the record.")] = None,
    reason: Annotated[str, typer.Option(help="Reason code.")] = "data-subject-request",
    url: Annotated[str, typer.Option(envvar="FJO_INGEST_URL", help="Ingest's base URL.")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str, typer.Option(envvar="FJO_TOKEN", help="Bearer token (partner role, your agency).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Send one request (options) or a file of them; safe to run again."""
    if not token:
        raise typer.BadParameter("give --token or FJO_TOKEN", param_hint="--token")
    if file is not None:
        requests: Iterable[dict[str, Any] | None] = (
            None if item is None else {"source": source, **item} for item in read_requests(file)
        )
    elif request_id and record_type and record_id:
        requests = [
            {
                "request_id": request_id,
                "kind": kind,
                "subject": subject,
                "source": source,
                "record_type": record_type,
                "record_id": record_id,
                "reason": reason,
            }
        ]
    else:
        raise typer.BadParameter("give --file, or --request-id, --type and --record-id")
    out = send_objections(requests, url=url, token=token)
    if as_json:
        typer.echo(json.dumps(out, indent=1))
    else:
        typer.echo(
            f"sent {out['sent']}: received {out['received']}, repeated {out['repeated']}, "
            f"refused {len(out['refused'])}"
        )
        for refusal in out["refused"]:
            typer.echo(f"  request {refusal['request']}: {refusal['reason']}")
    if out["refused"]:
        raise typer.Exit(1)
