"""``fjo pseudonymise``: re-encode from the identifier vault after a key rotation; re-wrap the
vault's data keys after a KEK rotation. Settings come from ``FJO_PSEUDONYMISE_*``."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["pseudonymise_app"]

pseudonymise_app = typer.Typer(
    help="Key rotation: re-encode from the identifier vault.", no_args_is_help=True
)


@pseudonymise_app.command("reencode")
def reencode(
    key_version: Annotated[int, typer.Option(help="The new key version (held in the ring).")],
    shard: Annotated[int, typer.Option(help="This job's shard, 0..shards-1.")] = 0,
    shards: Annotated[int, typer.Option(help="How many jobs share the work.")] = 1,
) -> None:
    """Publish every vaulted person's linkage keys under --key-version, so link re-links
    them (other records first, then spine people). Resumable: a rerun continues after the
    last page published."""
    from services.pseudonymise.bootstrap import run_reencode
    from services.pseudonymise.config import PseudonymiseSettings

    if not 0 <= shard < shards:
        typer.echo("fjo pseudonymise: --shard must be in 0..--shards-1", err=True)
        raise typer.Exit(2)

    def show(phase: str, done: int) -> None:
        typer.echo(f"{phase}\t{done}", err=True)

    result = run_reencode(
        PseudonymiseSettings(), key_version=key_version, shard=shard, shards=shards,
        on_progress=show,
    )  # fmt: skip
    for phase, count in result.published.items():
        typer.echo(f"{phase}\tpublished={count}\tkey_version={result.key_version}")


@pseudonymise_app.command("rewrap")
def rewrap() -> None:
    """Re-wrap every vault data key under the current KEK (after adding a new KEK file);
    payloads are not re-encrypted. Then the old KEK's file can be removed."""
    from services.pseudonymise.bootstrap import rewrap_vault
    from services.pseudonymise.config import PseudonymiseSettings

    typer.echo(f"rewrapped={rewrap_vault(PseudonymiseSettings())}")
