"""``fjo``: one command for partners, operators and developers.

Each command imports what it needs when it runs, so ``fjo version`` does not load FastAPI,
kafka-python or the services.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from contracts.services import Service
from fjo import __version__, access_cli, deploy_cli, idp_cli, push_cli, token_cli
from fjo.demo import cli as demo_cli
from services.runtime.settings import KafkaSecurityProtocol, SaslMechanism

app = typer.Typer(
    help="fjo: trusted research environment for family-justice data.", no_args_is_help=True
)
topics_app = typer.Typer(help="Kafka topics from the contracts' registry.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
deploy_cli.register(app)  # db upgrade, up, down
access_cli.register(app)  # audit verify, audit checkpoint
token_cli.register(app)  # token
push_cli.register(app)  # push (partners: resumable delivery upload)
demo_cli.register(app)  # synth, demo (make demo)
idp_cli.register(app)  # idp (the dev issuer as an OIDC provider, for the portal)

Served = StrEnum("Served", {name: name for name in [*(s.value for s in Service), "portal"]})  # type: ignore[misc]
"""What ``fjo serve`` runs: every service, and the portal."""


class Role(StrEnum):
    api = "api"
    worker = "worker"


@app.command()
def version() -> None:
    """Print fjo's version."""
    typer.echo(f"fjo {__version__}")


@app.command()
def serve(
    service: Served,  # type: ignore[valid-type]
    role: Role,
    host: Annotated[str, typer.Option(help="Address the API binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8000,
    probe_port: Annotated[
        int | None, typer.Option(help="Worker only: serve /healthz, /readyz, /metrics here.")
    ] = None,
) -> None:
    """Run one service as an HTTP API or as a Kafka worker."""
    from services import catalogue

    entry = catalogue.entry(service.value)
    if role is Role.api:
        if entry.create_app is None:
            raise typer.BadParameter(f"{service.value} has no api role")
        import uvicorn

        from services.runtime.telemetry import configure_process

        configure_process(entry.settings())  # as run_worker does for a worker
        uvicorn.run(entry.create_app(), host=host, port=port, log_config=None)
    else:
        if entry.build_worker is None:
            raise typer.BadParameter(f"{service.value} has no worker role")
        from services.runtime.worker_process import run_worker

        if probe_port is not None:
            from services.runtime.probe import start_probe_server

            start_probe_server(probe_port, host=host)
        run_worker(entry.settings(), entry.build_worker)


@topics_app.command("create")
def topics_create(
    bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    security_protocol: Annotated[
        KafkaSecurityProtocol, typer.Option(help="Kafka security protocol.")
    ] = KafkaSecurityProtocol.PLAINTEXT,
    sasl_mechanism: Annotated[
        SaslMechanism | None, typer.Option(help="SASL mechanism (with SASL_*).")
    ] = None,
    sasl_username: Annotated[str | None, typer.Option(help="SASL username.")] = None,
    sasl_password_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the SASL password (never on the command line, where ps shows it).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    ssl_cafile: Annotated[
        Path | None, typer.Option(help="PEM CA bundle of the brokers' certificates.")
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="PEM client certificate (TLS client auth).")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="PEM client private key.")] = None,
    ssl_check_hostname: Annotated[
        bool, typer.Option(help="Check that the broker's certificate names its host.")
    ] = True,
) -> None:
    """Create every topic of the registry on Kafka (partitions, retention); existing ones stay."""
    from pydantic import SecretStr, ValidationError

    from services.runtime.bus.factory import bus_from_settings
    from services.runtime.settings import BusSettings, read_secret_file
    from services.runtime.topics import topic_specs

    password = (
        SecretStr(read_secret_file(sasl_password_file).decode("utf-8"))
        if sasl_password_file is not None
        else None
    )
    try:
        settings = BusSettings(
            backend="kafka",
            kafka_bootstrap=bootstrap,
            kafka_security_protocol=security_protocol.value,
            kafka_sasl_mechanism=sasl_mechanism.value if sasl_mechanism else None,
            kafka_sasl_username=sasl_username,
            kafka_sasl_password=password,
            kafka_ssl_cafile=ssl_cafile,
            kafka_ssl_certfile=ssl_certfile,
            kafka_ssl_keyfile=ssl_keyfile,
            kafka_ssl_check_hostname=ssl_check_hostname,
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]) for e in exc.errors())
        raise typer.BadParameter(reasons) from None
    specs = topic_specs()
    bus = bus_from_settings(settings)
    try:
        bus.create_topics(specs)
    finally:
        bus.close()
    for spec in specs:
        typer.echo(f"{spec.name}\tpartitions={spec.partitions}")


# fjo link (batch, train, report): its commands import what they need when they run.
from fjo.link_cli import link_app  # noqa: E402

app.add_typer(link_app, name="link")


def add_plugins(app: typer.Typer) -> None:
    """Command groups other installed packages offer under the ``fjo.commands`` entry points
    (``bench`` registers ``fjo bench``), so the product never imports them by name."""
    from importlib.metadata import entry_points

    for plugin in entry_points(group="fjo.commands"):
        app.add_typer(plugin.load(), name=plugin.name)


add_plugins(app)


def main() -> None:
    """Console-script entrypoint."""
    app()
