"""Operator commands: ``fjo db upgrade <service>``, ``fjo up`` and ``fjo down``.

``fjo up`` runs the whole platform on one machine as separate processes, the way Kubernetes
runs it as separate pods (``fjo.stack.kafka.up_stack``); ``fjo down`` stops exactly the
process groups that ``fjo up`` recorded in the state directory (``var/stack/``).

Heavy imports happen inside the commands so that ``fjo version`` stays fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["db_app", "down", "register", "up"]

db_app = typer.Typer(help="Each service's database schema (Alembic).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help="ingest, pseudonymise, link or access.")],
    database_url: Annotated[
        str | None, typer.Option(help="Override the service's configured database URL.")
    ] = None,
) -> None:
    """Apply a service's Alembic migrations to its database (idempotent; the k8s Job runs it)."""
    from services import catalogue

    try:
        entry = catalogue.entry(service)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from None
    entry.migrate(database_url or entry.settings().database_url)
    typer.echo(f"{service}: migrated")


StateDir = Annotated[Path, typer.Option(help="PIDs, logs and ports.json of the stack.")]


def up(
    state_dir: StateDir = Path("var/stack"),
    kafka_bootstrap: Annotated[
        str | None, typer.Option(help="Use this Kafka instead of starting scripts/kafka.sh.")
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(help="Admin URL of a PostgreSQL to use instead of scripts/postgres.sh."),
    ] = None,
    db_prefix: Annotated[
        str, typer.Option(help="Databases are named <prefix>_<service>.")
    ] = "fjo_stack",
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 120.0,
) -> None:
    """Run every service role as its own process against local Kafka and PostgreSQL."""
    from fjo.stack.kafka import up_stack

    try:
        state = up_stack(
            state_dir.resolve(),
            kafka_bootstrap=kafka_bootstrap,
            postgres_url=postgres_url,
            db_prefix=db_prefix,
            ready_timeout_s=ready_timeout,
            echo=typer.echo,
        )
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        typer.echo(f"fjo up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"up: {len(state.processes)} processes; ports in {state_dir / 'ports.json'}")


def down(
    state_dir: StateDir = Path("var/stack"),
    keep_services: Annotated[
        bool, typer.Option(help="Leave Kafka and PostgreSQL running even if `up` started them.")
    ] = False,
) -> None:
    """Stop the processes `fjo up` started (and the Kafka/PostgreSQL it started)."""
    from fjo.stack.processes import down_stack

    down_stack(state_dir.resolve(), stop_services=not keep_services, echo=typer.echo)


def register(app: typer.Typer) -> None:
    """Add ``db``, ``up`` and ``down`` to the ``fjo`` command."""
    app.add_typer(db_app, name="db")
    app.command("up")(up)
    app.command("down")(down)
