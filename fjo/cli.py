"""``fjo``: one command for partners, operators and developers.

Each command imports what it needs when it runs, so ``fjo version`` does not load FastAPI,
kafka-python or the services.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from contracts.services import Service
from fjo import (
    __version__,
    access_cli,
    deploy_cli,
    idp_cli,
    push_cli,
    retention_cli,
    token_cli,
    workspace_cli,
)
from fjo.demo import cli as demo_cli
from fjo.objections_cli import objections_app
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
app.add_typer(objections_app, name="objections")  # objections, erasure, opt-outs
workspace_cli.register(app)  # workspace (researchers: queries, jobs, outputs in the TRE)
demo_cli.register(app)  # synth, demo (make demo)
idp_cli.register(app)  # idp (the dev issuer as an OIDC provider, for the portal)
retention_cli.register(app)  # retention run --service (the services' own tables)

Served = StrEnum("Served", {name: name for name in [*(s.value for s in Service), "portal"]})  # type: ignore[misc]
"""What ``fjo serve`` runs: every service, and the portal."""


class Role(StrEnum):
    api = "api"
    worker = "worker"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fjo {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print fjo's version and exit.",
        ),
    ] = False,
) -> None:
    pass


@app.command()
def version() -> None:
    """Print fjo's version."""
    _print_version(True)


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


Bootstrap = Annotated[str, typer.Option(help="Kafka bootstrap servers.")]
SecurityProtocol = Annotated[KafkaSecurityProtocol, typer.Option(help="Kafka security protocol.")]
Mechanism = Annotated[SaslMechanism | None, typer.Option(help="SASL mechanism (with SASL_*).")]
SaslUsername = Annotated[str | None, typer.Option(help="SASL username.")]
SaslPasswordFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding the SASL password (never on the command line, where ps shows it).",
        exists=True,
        dir_okay=False,
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(help="PEM CA bundle of the brokers' certificates.", exists=True, dir_okay=False),
]
CertFile = Annotated[
    Path | None,
    typer.Option(help="PEM client certificate (TLS client auth).", exists=True, dir_okay=False),
]
KeyFile = Annotated[
    Path | None, typer.Option(help="PEM client private key.", exists=True, dir_okay=False)
]
CheckHostname = Annotated[
    bool, typer.Option(help="Check that the broker's certificate names its host.")
]


def _kafka_bus(
    bootstrap: str,
    security_protocol: KafkaSecurityProtocol,
    sasl_mechanism: SaslMechanism | None,
    sasl_username: str | None,
    sasl_password_file: Path | None,
    ssl_cafile: Path | None,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
    ssl_check_hostname: bool,
) -> Any:
    """A Kafka bus from the ``fjo topics`` options (a usage error if they do not fit)."""
    from pydantic import SecretStr, ValidationError

    from services.runtime.settings import BusSettings, read_secret_file

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
    from services.runtime.bus.factory import bus_from_settings

    return bus_from_settings(settings)  # a KafkaBus (backend="kafka")


@topics_app.command("create")
def topics_create(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    security_protocol: SecurityProtocol = KafkaSecurityProtocol.PLAINTEXT,
    sasl_mechanism: Mechanism = None,
    sasl_username: SaslUsername = None,
    sasl_password_file: SaslPasswordFile = None,
    ssl_cafile: CaFile = None,
    ssl_certfile: CertFile = None,
    ssl_keyfile: KeyFile = None,
    ssl_check_hostname: CheckHostname = True,
) -> None:
    """Create every topic of the registry on Kafka (partitions, retention); existing ones stay."""
    bus = _kafka_bus(**locals())  # every option above is a connection setting
    from services.runtime.topics import topic_specs

    specs = topic_specs()
    try:
        bus.create_topics(specs)
    finally:
        bus.close()
    for spec in specs:
        typer.echo(f"{spec.name}\tpartitions={spec.partitions}")


@topics_app.command("check")
def topics_check(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    security_protocol: SecurityProtocol = KafkaSecurityProtocol.PLAINTEXT,
    sasl_mechanism: Mechanism = None,
    sasl_username: SaslUsername = None,
    sasl_password_file: SaslPasswordFile = None,
    ssl_cafile: CaFile = None,
    ssl_certfile: CertFile = None,
    ssl_keyfile: KeyFile = None,
    ssl_check_hostname: CheckHostname = True,
) -> None:
    """Report drift between the registry and the broker's topics (missing, partitions,
    cleanup.policy, retention.ms); exit 1 if there is any."""
    bus = _kafka_bus(**locals())  # every option above is a connection setting
    from services.runtime.topics import topic_drift, topic_specs

    specs = topic_specs()
    try:
        drift = topic_drift(specs, bus.describe_topics([spec.name for spec in specs]))
    finally:
        bus.close()
    for line in drift:
        typer.echo(line)
    if drift:
        typer.echo(
            f"{len(drift)} difference(s); `fjo topics create` adds missing topics only", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"no drift: {len(specs)} topics as the registry says")


# fjo link (batch, train, report): its commands import what they need when they run.
from fjo.link_cli import link_app  # noqa: E402

app.add_typer(link_app, name="link")

from fjo.pseudonymise_cli import pseudonymise_app  # noqa: E402

app.add_typer(pseudonymise_app, name="pseudonymise")


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
