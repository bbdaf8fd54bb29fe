"""``fjo bench ...``: the benchmarks as a command group of ``fjo``.

``bench`` registers this Typer app under the ``fjo.commands`` entry points (pyproject.toml), and
``fjo`` adds whatever is registered there: the product never imports ``bench``. Each command
imports its benchmark when it runs, so ``fjo version`` stays fast.

A new benchmark is a module ``bench/<name>.py`` with ``main(argv)`` (argparse, writing its JSON
to ``bench/results/``) and one line in ``MAIN_COMMANDS``; ``fjo bench <name> ARGS`` then runs
``main(ARGS)`` (``--help`` included).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated

import typer

__all__ = ["MAIN_COMMANDS", "app"]

app = typer.Typer(help="Benchmarks that write JSON to bench/results/.", no_args_is_help=True)

MAIN_COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("bench.ingest", "Records/s through ingest's HTTP API into the bus."),
    "access-extract": ("bench.access_extract", "Rows/s building an extract in access."),
    "link": ("bench.link_benchmark", "Linkage accuracy and speed against Splink (synth, febrl)."),
}
"""fjo bench <name> -> (module with ``main(argv)``, one line of help)."""


def _main_of(module: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        importlib.import_module(module).main(list(ctx.args))

    return command


for _name, (_module, _help) in MAIN_COMMANDS.items():
    app.command(
        _name,
        help=f"{_help} (`python -m {_module} --help`)",
        add_help_option=False,  # --help goes to the benchmark's own parser
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(_main_of(_module))


@app.command("bus")
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


@app.command("pseudonymise")
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


@app.command("pipeline")
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
    from bench.pipeline.run import run_pipeline_benchmark

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


@app.command("link-scale")
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
