"""``fjo link``: batch linkage of CSV files, model training, and the linkage quality report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from fjo.progress import progress_bars

__all__ = ["link_app"]

link_app = typer.Typer(help="Privacy-preserving linkage against the spine.", no_args_is_help=True)


def _input(help_: str) -> Any:
    """An option naming a file the command reads: typer refuses a missing file or a folder
    with a usage error (exit 2), before the command runs."""
    return typer.Option(help=help_, exists=True, dir_okay=False, readable=True)


def _fail(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit status 2."""
    typer.echo(f"fjo link: {message}", err=True)
    raise typer.Exit(2)


@link_app.command("batch")
def batch(
    spine: Annotated[Path, _input("Spine CSV (id, given_name, surname, ...).")],
    incoming: Annotated[Path, _input("Incoming CSV with the same columns.")],
    out: Annotated[Path, typer.Option(help="Predictions CSV to write.")],
    model: Annotated[Path | None, _input("A trained model JSON; else train.")] = None,
    model_out: Annotated[Path | None, typer.Option(help="Write the model used here.")] = None,
    processes: Annotated[int, typer.Option(help="Encoding and linking processes.")] = 2,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
) -> None:
    """Encode both files with pseudonymise's split and link on the encodings only.

    The output has a row for every incoming record: incoming_id, spine_id (set when the
    status is a link: 1, 4, 39, 50), match_probability and status of the best candidate,
    and candidate_id (the best candidate, review band and below included), so a threshold
    of your own can be applied afterwards."""
    from fjo.link_batch import BatchInputError, run_batch, summary

    if processes < 1:
        _fail("--processes must be at least 1")
    try:
        with progress_bars(progress) as show:
            result = run_batch(
                spine,
                incoming,
                out,
                model_json=model,
                train_model=model is None,
                processes=processes,
                model_out=model_out,
                progress=show,
            )
    except BatchInputError as exc:
        _fail(str(exc))
    typer.echo(summary(result))


@link_app.command("train")
def train(
    spine: Annotated[Path, _input("Spine CSV.")],
    incoming: Annotated[Path, _input("Incoming CSV (a sample is enough).")],
    model_out: Annotated[Path, typer.Option(help="Where to write the trained model JSON.")],
    sample: Annotated[int, typer.Option(help="Incoming records used for EM.")] = 20_000,
    version: Annotated[str, typer.Option(help="Version of the trained model.")] = "trained",
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
) -> None:
    """Estimate u from the spine and m by EM on a sample; write the model as JSON."""
    import secrets

    from fjo.link_batch import CSV_COLUMNS, BatchInputError, encode_rows, read_csv
    from services.link.domain import SpineIndex, default_model
    from services.link.domain import train as train_model

    key = secrets.token_bytes(32)
    try:
        spine_rows = read_csv(spine, required=CSV_COLUMNS)
        incoming_rows = read_csv(incoming, required=CSV_COLUMNS)[:sample]
    except BatchInputError as exc:
        _fail(str(exc))
    with progress_bars(progress) as show:
        spine_recs = encode_rows(spine_rows, key, progress=show, step="encode spine")
        incoming_recs = encode_rows(incoming_rows, key, progress=show, step="encode incoming")
        base = default_model()
        index = SpineIndex(base)
        show("index", 0, len(spine_recs))
        for n, rec in enumerate(spine_recs, start=1):
            index.add(rec)
            if n % 10_000 == 0:
                show("index", n, len(spine_recs))
        show("index", len(spine_recs), len(spine_recs))
        compact = [index.schema.compact(r, index.interner, grow=False) for r in incoming_recs]
        show("train", 0, 1)  # one step: u from the spine, then m by EM
        trained, log = train_model(base, index, compact, version=version)
        show("train", 1, 1)
    model_out.write_text(trained.to_json())
    typer.echo(json.dumps(log, indent=1))


@link_app.command("report")
def report(
    predictions: Annotated[Path, _input("Predictions CSV from `fjo link batch`.")],
    out: Annotated[Path, typer.Option(help="Report folder (report.json, report.html).")],
    incoming: Annotated[Path | None, _input("Incoming CSV, for rates by group.")] = None,
    truth: Annotated[Path | None, _input("CSV incoming_id,spine_id of truth.")] = None,
) -> None:
    """Link rates by group, score distribution, review-queue size; with truth, P/R/F1."""
    from services.link.report import build_report

    path = build_report(predictions, out, incoming=incoming, truth=truth)
    typer.echo(str(path))
