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
bench_app = typer.Typer(help="Benchmarks that write JSON to bench/results/.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(bench_app, name="bench")
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


@bench_app.command("bus")
def bench_bus(
    messages: Annotated[
        int, typer.Option(help="Messages through Kafka and raw kafka-python.")
    ] = 100_000,
    embedded_messages: Annotated[
        int, typer.Option(help="Messages through the embedded bus.")
    ] = 20_000,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap; default var/kafka/bootstrap, else Kafka is skipped."),
    ] = None,
    repeat: Annotated[int, typer.Option(help="Rounds; the best of them is reported.")] = 1,
) -> None:
    """Produce+consume throughput of each bus backend against raw kafka-python (same run)."""
    from bench.bus import run_bus_benchmark

    result = run_bus_benchmark(
        kafka_bootstrap=bootstrap,
        kafka_messages=messages,
        embedded_messages=embedded_messages,
        repeat=repeat,
        log=typer.echo,
    )
    for name, figures in result["results"].items():
        typer.echo(f"{name}: end to end {figures['end_to_end_msgs_per_s']:,.0f} msg/s")
    for name, ratio in result["ratio_to_raw_kafka"].items():
        typer.echo(f"{name} / raw kafka-python: end to end x{ratio['end_to_end_msgs_per_s']}")
    for name, why in result["skipped"].items():
        typer.echo(f"{name}: skipped ({why})")


@bench_app.command("pseudonymise")
def bench_pseudonymise(
    records: Annotated[int, typer.Option(help="Synthetic person and case records.")] = 5000,
    repeats: Annotated[int, typer.Option(help="Runs, each under a fresh key; best kept.")] = 3,
) -> None:
    """Records/s through the encoding path (the split), JSON to bench/results/."""
    import json

    from bench.pseudonymise_encoding import RESULT, run

    result = run(records, repeats)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"{result['records_per_s']:,.0f} records/s ({RESULT})")


@bench_app.command("link-scale")
def bench_link_scale(
    sizes: Annotated[
        str, typer.Option(help="Spine sizes, comma-separated (above 1M: whole millions).")
    ] = "200000,1000000,5000000",
    queries: Annotated[int, typer.Option(help="Streaming lookups timed per replica.")] = 2000,
    replicas: Annotated[str, typer.Option(help="Replica counts, comma-separated.")] = "1,3",
) -> None:
    """The spine index at population scale: build and snapshot times, bytes per spine person,
    streaming p50/p99 and batch records/s, one and three replicas; JSON to bench/results/."""
    from bench._common import write_result
    from bench.link_scale import run

    result = run(
        [int(x) for x in sizes.split(",") if x.strip()],
        queries,
        [int(x) for x in replicas.split(",") if x.strip()],
    )
    path = write_result("link-scale", result)
    for size, r in result["results"].items():
        for key in sorted(k for k in r if k.startswith("n")):
            n = r[key]
            typer.echo(
                f"{int(size):>9,} people, N={n['replicas']}: p50 {n['p50_ms']} ms, "
                f"p99 {n['p99_ms']} ms, {n['batch_records_per_s_total']} records/s, "
                f"{n['bytes_per_person']} bytes/person"
            )
    typer.echo(str(path))


@bench_app.command("pipeline")
def bench_pipeline(
    records: Annotated[int, typer.Option(help="Incoming partner records (world size).")] = 3000,
    spine_size: Annotated[
        int, typer.Option(help="Spine records, pushed and drained first.")
    ] = 3000,
    backends: Annotated[
        str, typer.Option(help="Comma-separated: embedded, kafka.")
    ] = "embedded,kafka",
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Kafka bootstrap (default var/kafka/bootstrap); `own`: a broker for this run only."
        ),
    ] = None,
    postgres_url: Annotated[
        str | None, typer.Option(help="PostgreSQL admin URL; default var/postgres/url.")
    ] = None,
    ceiling: Annotated[bool, typer.Option(help="Measure the raw kafka-python ceiling.")] = True,
) -> None:
    """Records/s partner HTTP → access on each backend, against the raw Kafka ceiling."""
    from bench.pipeline import run_pipeline_benchmark

    result = run_pipeline_benchmark(
        records=records,
        spine_size=spine_size,
        backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
        kafka_bootstrap=kafka_bootstrap,
        postgres_url=postgres_url,
        ceiling=ceiling,
        log=typer.echo,
    )
    for name, r in result["results"].items():
        lat = r["latency_ms"]["complete"] or {}
        typer.echo(
            f"{name}: {r['records_per_s']} records/s, p50 {lat.get('p50')} ms, "
            f"p99 {lat.get('p99')} ms, ratio to ceiling {result['ratio_to_ceiling'].get(name)}"
        )
    if result["ceiling"]:
        typer.echo(f"raw kafka-python ceiling: {result['ceiling']['records_per_s']} records/s")
    for name, why in result["skipped"].items():
        typer.echo(f"{name}: skipped ({why})")


# fjo link (batch, train, report): its commands import what they need when they run.
from fjo.link_cli import link_app  # noqa: E402

app.add_typer(link_app, name="link")


def main() -> None:
    """Console-script entrypoint."""
    app()
