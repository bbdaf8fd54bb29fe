"""``fjo token``: mint a bearer token from the local dev issuer (dev only).

The key lives in a file (default ``var/fjo/dev-issuer.pem``, created on first use) that the
services' dev verifiers read too, so a minted token works against a local ``fjo serve`` with
``FJO_ENVIRONMENT=dev``. Test and prod verify tokens from the organisation's OIDC issuer; this
command cannot mint those, and refuses to run where ``FJO_ENVIRONMENT`` names one of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "token"]


def token(
    subject: Annotated[str, typer.Option(help="The token's subject (who is calling).")],
    role: Annotated[
        list[str] | None,
        typer.Option(
            help="A role (repeatable): researcher, approver, output-checker, admin, partner."
        ),
    ] = None,
    audience: Annotated[
        str, typer.Option(help="The service the token is for: fjo-access, fjo-ingest.")
    ] = "fjo-access",
    source: Annotated[
        str | None, typer.Option(help="Partner agency (ingest tokens), e.g. cafcass-cymru.")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 3600,
    key_file: Annotated[Path, typer.Option(help="The dev issuer's signing key.")] = Path(
        "var/fjo/dev-issuer.pem"
    ),
    issuer: Annotated[str, typer.Option(help="The dev issuer's name (iss).")] = (
        "https://dev.fjo.invalid"
    ),
) -> None:
    """Print a signed dev token, e.g. ``fjo token --subject alice --role researcher``."""
    from services.runtime.auth import MAX_LIFETIME_S, DevIssuer
    from services.runtime.settings import ENVIRONMENT_VARIABLE, Environment, PlatformSettings

    platform = PlatformSettings()
    if "environment" in platform.model_fields_set and platform.environment is not Environment.DEV:
        raise typer.BadParameter(
            f"{ENVIRONMENT_VARIABLE}={platform.environment.value}: no service there trusts the "
            "dev issuer; get a token from the organisation's OIDC issuer",
            param_hint="environment",
        )
    if ttl > MAX_LIFETIME_S:  # the services refuse longer-lived tokens
        raise typer.BadParameter(f"at most {MAX_LIFETIME_S} s", param_hint="--ttl")
    dev = DevIssuer.from_file(key_file, issuer=issuer)
    typer.echo(dev.mint(subject, audience=audience, roles=role or [], source=source, ttl_s=ttl))


def register(app: typer.Typer) -> None:
    """Add ``fjo token`` to the main command."""
    app.command("token")(token)
