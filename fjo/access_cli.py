"""``fjo audit ...`` and ``fjo access ...``: operator commands of the access service (its
audit trail, the retention job)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fjo.progress import progress_bars

if TYPE_CHECKING:
    from services.access.bootstrap import AccessContext

__all__ = ["access_app", "audit_app", "register"]

audit_app = typer.Typer(
    help="The access service's tamper-evident audit trail.", no_args_is_help=True
)


def _context(public_key: Path | None = None) -> AccessContext:
    """Access's context from its settings, without migrating anything: these commands read
    the trail as it is (a verification must never change what it verifies)."""
    from services.access.bootstrap import build_context
    from services.access.config import AccessSettings
    from services.access.domain.audit import load_public_key

    settings = AccessSettings().model_copy(update={"migrate_on_start": False})
    key = None if public_key is None else load_public_key(public_key.read_bytes())
    return build_context(settings, public_key=key)


@audit_app.command("verify")
def verify(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Verify with this Ed25519 public key (PEM, `fjo audit export-key`) instead of "
            "the service's own: all a third party needs.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="Exported checkpoints (JSON lines, `fjo audit export-checkpoints`) kept "
            "outside the database: rows deleted with their stored checkpoints show against them.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="A progress bar on stderr.")] = True,
) -> None:
    """Check every row of the audit chain, its head and every signed checkpoint; exit 1 if
    tampered."""
    from services.access.domain.audit import Checkpoint

    exported = []
    if checkpoints is not None:
        lines = checkpoints.read_text().splitlines()
        exported = [Checkpoint.from_dict(json.loads(line)) for line in lines if line.strip()]
    ctx = _context(public_key)
    try:
        with progress_bars(progress and not json_output) as show:
            result = ctx.audit.verify(
                ctx.engine,
                exported=exported,
                progress=lambda done, total: show("verify", done, total),
            )
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
    """Sign and store the chain's current head (after a checkpoint store outage left the
    newest rows uncovered); refused when the trail does not verify otherwise."""
    from services.access.storage.audit_store import TrailNotSound

    ctx = _context()
    try:
        cp = ctx.audit.checkpoint_head(ctx.engine)
    except TrailNotSound as exc:
        typer.echo(f"refused: the trail does not verify: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.dispose()
    typer.echo("empty trail" if cp is None else f"checkpoint at entry {cp.seq}")


@audit_app.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the new private key (PEM, mode 0600).")
    ],
) -> None:
    """Make a new Ed25519 signing key for the audit trail; prints its public key.

    Mount the private key as the secret file ``FJO_ACCESS_AUDIT_SIGNING_KEY_FILE`` names;
    give the public key to whoever verifies the trail.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.access.domain.audit import public_key_pem

    if out.exists():
        typer.echo(f"{out} exists: not overwriting a key", err=True)
        raise typer.Exit(2)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    typer.echo(public_key_pem(key.public_key()), nl=False)


@audit_app.command("export-key")
def export_key(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the public key here instead of stdout.")
    ] = None,
) -> None:
    """Print the public key of the configured signing key (PEM): what a verifier needs."""
    from services.access.bootstrap import audit_signer
    from services.access.config import AccessSettings
    from services.access.domain.audit import public_key_pem

    pem = public_key_pem(audit_signer(AccessSettings()).public_key)
    if out is None:
        typer.echo(pem, nl=False)
    else:
        out.write_text(pem)


@audit_app.command("export-checkpoints")
def export_checkpoints(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Append to this file (only checkpoints newer than its last one) instead of "
            "printing; ship it to write-once storage.",
        ),
    ] = None,
) -> None:
    """The signed checkpoints as JSON lines, for storage outside the database."""
    from services.access.domain.audit import Checkpoint

    since = 0
    if out is not None and out.exists():
        lines = [line for line in out.read_text().splitlines() if line.strip()]
        if lines:
            since = Checkpoint.from_dict(json.loads(lines[-1])).seq
    ctx = _context()
    try:
        found = ctx.audit.stored_checkpoints(since=since)
    finally:
        ctx.dispose()
    text = "".join(json.dumps(cp.as_dict(), sort_keys=True) + "\n" for cp in found)
    if out is None:
        typer.echo(text, nl=False)
    else:
        with out.open("a") as f:
            f.write(text)
        typer.echo(f"{len(found)} checkpoints appended to {out}", err=True)


@audit_app.command("grants")
def grants(
    role: Annotated[str, typer.Option("--role", help="The access service's database login.")],
    checkpoints_apart: Annotated[
        bool,
        typer.Option(
            "--checkpoints-apart",
            help="The checkpoint store is a database of its own (CHECKPOINT_DATABASE_URL set).",
        ),
    ] = False,
) -> None:
    """SQL an owner runs on PostgreSQL so that the service's role may only append to the
    audit tables (after `fjo db upgrade access` as that owner). Needs no settings or keys:
    it only prints statements."""
    from services.access.storage.append_only import HEAD_TABLE, audit_grants
    from services.access.storage.migrate import CHECKPOINT_VERSION_TABLE, VERSION_TABLE
    from services.access.storage.models import AuditCheckpointRow, AuditLogRow, Base

    checkpoints = AuditCheckpointRow.__tablename__
    apart = checkpoints_apart
    audit = (AuditLogRow.__tablename__, *(() if apart else (checkpoints,)))
    others = tuple(
        t.name for t in Base.metadata.sorted_tables if t.name not in (*audit, HEAD_TABLE)
    )
    blocks = [
        (
            "the access database",
            audit_grants(
                role,
                audit=audit,
                head=True,
                other_tables=others,
                read_only=(VERSION_TABLE, *(() if apart else (CHECKPOINT_VERSION_TABLE,))),
            ),
        )
    ]
    if apart:
        blocks.append(
            (
                "the checkpoint store's database (CHECKPOINT_DATABASE_URL)",
                audit_grants(
                    role, audit=(checkpoints,), head=False, read_only=(CHECKPOINT_VERSION_TABLE,)
                ),
            )
        )
    for where, statements in blocks:
        typer.echo(f"-- {where}")
        for statement in statements:
            typer.echo(statement + ";")


access_app = typer.Typer(help="Operator jobs of the access service.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention: ended projects' workspaces, deleted with a certificate.", no_args_is_help=True
)
access_app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Delete the workspace of every project that ended longer ago than its retention period,
    each with a signed deletion certificate in the audit trail; idempotent (a second run
    deletes and certifies nothing)."""
    from services.access.bootstrap import build_context
    from services.access.config import AccessSettings
    from services.access.retention import WorkspaceStorageMissing, run_retention

    ctx = build_context(AccessSettings())
    try:
        ctx.audit.open(ctx.sessions)
        report = run_retention(ctx)
    except WorkspaceStorageMissing as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.dispose()
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "deleted": report.deleted,
                    "waiting": {p: due.isoformat() for p, due in report.waiting.items()},
                    "finished": report.finished,
                }
            )
        )
        return
    for project_id, files in report.deleted.items():
        typer.echo(f"deleted {project_id}: {files} files, certificate in the audit trail")
    for project_id in report.finished:
        typer.echo(f"finished {project_id}: files left by an interrupted run removed")
    typer.echo(
        f"{len(report.deleted)} workspaces deleted, {len(report.waiting)} waiting for their "
        "retention period"
    )


def register(app: typer.Typer) -> None:
    """Add ``fjo audit`` and ``fjo access`` to the main command."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(access_app, name="access")
