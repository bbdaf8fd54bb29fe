"""``fjo idp``: the dev issuer as an OpenID Connect provider (dev and tests only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["idp", "register"]


def idp(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 8090,
    key_file: Annotated[
        Path, typer.Option(help="The dev issuer's signing key (created if missing).")
    ] = Path("var/fjo/dev-issuer.pem"),
    issuer: Annotated[
        str | None, typer.Option(help="Issuer URL (default http://127.0.0.1:<port>).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Where its endpoints are, if not at the issuer URL.")
    ] = None,
    client_id: Annotated[str, typer.Option(help="The portal's client id.")] = "fjo-portal",
    redirect_uri: Annotated[
        list[str], typer.Option(help="A redirect URI the client may use (repeatable).")
    ] = [],  # noqa: B006
) -> None:
    """Serve discovery, JWKS, a dev sign-in page (pick a persona) and a PKCE token endpoint."""
    import uvicorn

    from fjo.dev_idp import create_idp

    app = create_idp(
        issuer=issuer or f"http://127.0.0.1:{port}",
        base_url=base_url or f"http://127.0.0.1:{port}",
        key_file=key_file,
        clients={client_id: redirect_uri},
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("idp")(idp)
