"""``fjo audit ...``: operator commands of the access service's audit trail."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["audit_app", "register"]

audit_app = typer.Typer(
    help="The access service's tamper-evident audit trail.", no_args_is_help=True
)


@audit_app.command("verify")
def verify(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every link of the audit chain and every signed checkpoint; exit 1 if tampered."""
    from services.access.bootstrap import build_context
    from services.access.config import AccessSettings

    ctx = build_context(AccessSettings())
    try:
        result = ctx.audit.verify(ctx.engine)
    finally:
        ctx.dispose()
    if json_output:
        typer.echo(json.dumps(result.as_dict()))
    else:
        status = "OK" if result.ok else "TAMPERED"
        typer.echo(f"{status}: {result.entries} entries, {result.checkpoints} checkpoints")
        for problem in result.problems:
            typer.echo(f"  - {problem}")
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign and store the chain's current head (after restoring a checkpoint store, say)."""
    from services.access.bootstrap import build_context
    from services.access.config import AccessSettings

    ctx = build_context(AccessSettings())
    try:
        cp = ctx.audit.checkpoint_head(ctx.engine)
    finally:
        ctx.dispose()
    typer.echo("empty trail" if cp is None else f"checkpoint at entry {cp.seq}")


def register(app: typer.Typer) -> None:
    """Add ``fjo audit`` to the main command."""
    app.add_typer(audit_app, name="audit")
