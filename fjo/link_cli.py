"""``fjo link``: batch linkage of CSV files, model training, and the linkage quality report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["link_app"]

link_app = typer.Typer(help="Privacy-preserving linkage against the spine.", no_args_is_help=True)


@link_app.command("batch")
def batch(
    spine: Annotated[Path, typer.Option(help="Spine CSV (id, given_name, surname, ...).")],
    incoming: Annotated[Path, typer.Option(help="Incoming CSV with the same columns.")],
    out: Annotated[Path, typer.Option(help="Predictions CSV to write.")],
    model: Annotated[Path | None, typer.Option(help="A trained model JSON; else train.")] = None,
    model_out: Annotated[Path | None, typer.Option(help="Write the model used here.")] = None,
    processes: Annotated[int, typer.Option(help="Encoding processes.")] = 2,
) -> None:
    """Encode both files with pseudonymise's split and link on the encodings only."""
    from fjo.link_batch import run_batch, summary

    result = run_batch(
        spine,
        incoming,
        out,
        model_json=model,
        train_model=model is None,
        processes=processes,
        model_out=model_out,
    )
    typer.echo(summary(result))


@link_app.command("train")
def train(
    spine: Annotated[Path, typer.Option(help="Spine CSV.")],
    incoming: Annotated[Path, typer.Option(help="Incoming CSV (a sample is enough).")],
    model_out: Annotated[Path, typer.Option(help="Where to write the trained model JSON.")],
    sample: Annotated[int, typer.Option(help="Incoming records used for EM.")] = 20_000,
    version: Annotated[str, typer.Option(help="Version of the trained model.")] = "trained",
) -> None:
    """Estimate u from the spine and m by EM on a sample; write the model as JSON."""
    import secrets

    from fjo.link_batch import encode_rows, read_csv
    from services.link.domain import SpineIndex, default_model
    from services.link.domain import train as train_model

    key = secrets.token_bytes(32)
    spine_recs = encode_rows(read_csv(spine), key)
    incoming_recs = encode_rows(read_csv(incoming)[:sample], key)
    base = default_model()
    index = SpineIndex(base)
    for rec in spine_recs:
        index.add(rec)
    compact = [index.schema.compact(r, index.interner, grow=False) for r in incoming_recs]
    trained, log = train_model(base, index, compact, version=version)
    model_out.write_text(trained.to_json())
    typer.echo(json.dumps(log, indent=1))


@link_app.command("report")
def report(
    predictions: Annotated[Path, typer.Option(help="Predictions CSV from `fjo link batch`.")],
    out: Annotated[Path, typer.Option(help="Report folder (report.json, report.html).")],
    incoming: Annotated[Path | None, typer.Option(help="Incoming CSV, for rates by group.")] = None,
    truth: Annotated[Path | None, typer.Option(help="CSV incoming_id,spine_id of truth.")] = None,
) -> None:
    """Link rates by group, score distribution, review-queue size; with truth, P/R/F1."""
    from services.link.report import build_report

    path = build_report(predictions, out, incoming=incoming, truth=truth)
    typer.echo(str(path))
