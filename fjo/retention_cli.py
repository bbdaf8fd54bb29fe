"""``fjo retention run --service <name>``: delete a service's own rows past their periods
(ingest's receipts, pseudonymise's markers and re-encode progress, link's decided reviews and
audit), with the service's settings (``FJO_<SERVICE>_RETENTION__*``). Access's retention is
``fjo access retention run`` (workspaces, with deletion certificates)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["register", "retention_app"]

retention_app = typer.Typer(
    help="Retention of the services' own tables (docs/operators.md).", no_args_is_help=True
)


@retention_app.command("run")
def run(
    service: Annotated[
        str, typer.Option(help="ingest, pseudonymise or link (access: fjo access retention run).")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Delete, in batches, every row of the service's tables that is past its retention
    period; idempotent (a second run deletes nothing). Prints the rows deleted per table."""
    from services import catalogue
    from services.runtime.retention import RetentionRefused

    try:
        entry = catalogue.entry(service)
    except LookupError as exc:
        typer.echo(f"fjo retention: {exc}", err=True)
        raise typer.Exit(2) from None
    if entry.retention is None:
        typer.echo(
            f"fjo retention: {service} has no table retention of this kind"
            + (" (fjo access retention run)" if service == "access" else ""),
            err=True,
        )
        raise typer.Exit(2)
    try:
        counts = entry.retention(entry.settings())
    except RetentionRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps({"service": service, "deleted": dict(counts)}))
        return
    for table, n in counts.items():
        typer.echo(f"{table}\tdeleted={n}")
    typer.echo(f"{sum(counts.values())} rows deleted")


def register(app: typer.Typer) -> None:
    """Add ``fjo retention`` to the main command."""
    app.add_typer(retention_app, name="retention")
