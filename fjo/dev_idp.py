"""The dev issuer as an OpenID Connect provider, for the demo and the portal's tests.

A real provider process (``fjo idp``) with discovery, JWKS, an authorisation endpoint whose
page picks one of the demo's personas (the dev sign-in), and a token endpoint that insists on
PKCE S256, single-use codes bound to their client and redirect URI, and mints the persona's
tokens with the dev issuer's key (``services.runtime.auth.DevIssuer``): an access token for
the services' audiences and an ID token for the portal. Never for production: the portal's
production issuer is the organisation's own (``FJO_PORTAL_OIDC__ISSUER``).
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Form, Query
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from fjo.personas import PERSONAS, Persona
from services.runtime.auth import DevIssuer

__all__ = ["AUDIENCES", "create_idp", "persona_summary"]

AUDIENCES = ("fjo-access", "fjo-link", "fjo-ingest")
"""Every API the portal calls with the person's access token."""

_CODE_TTL_S = 60


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    subject: str
    nonce: str | None
    code_challenge: str
    expires: float


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def create_idp(
    *,
    issuer: str,
    base_url: str | None = None,
    key_file: Path,
    clients: Mapping[str, Sequence[str]],
    personas: Sequence[Persona] = PERSONAS,
    audiences: Sequence[str] = AUDIENCES,
    ttl_s: int = 3600,
) -> FastAPI:
    """The provider: ``clients`` maps each client id to its registered redirect URIs; its
    endpoints are under ``base_url`` (default: the issuer URL itself)."""
    base = base_url or issuer
    dev = DevIssuer.from_file(key_file, issuer=issuer)
    grants: dict[str, _Grant] = {}
    lock = threading.Lock()
    app = FastAPI(title="fjo dev sign-in", docs_url=None, redoc_url=None, openapi_url=None)
    known = {p.subject: p for p in personas}

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "name", "roles", "fjo_source", "nonce"],
        }

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return dev.jwks()

    def check_client(client_id: str, redirect_uri: str) -> str | None:
        if redirect_uri not in clients.get(client_id, ()):
            return "unknown client or redirect URI"
        return None

    @app.get("/authorize", response_class=HTMLResponse)
    def authorize(
        client_id: Annotated[str, Query(max_length=200)],
        redirect_uri: Annotated[str, Query(max_length=2000)],
        response_type: Annotated[str, Query(max_length=20)],
        state: Annotated[str, Query(max_length=500)],
        code_challenge: Annotated[str, Query(min_length=43, max_length=128)],
        code_challenge_method: Annotated[str, Query(max_length=10)],
        scope: Annotated[str, Query(max_length=500)] = "openid",
        nonce: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        problem = check_client(client_id, redirect_uri)
        if problem:  # never redirect to an unregistered URI
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        if response_type != "code" or code_challenge_method != "S256":
            query = urlencode({"error": "invalid_request", "state": state})
            return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)
        hidden = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "nonce": nonce or "",
        }
        return HTMLResponse(_persona_page(personas, hidden))

    @app.post("/authorize")
    def choose(
        client_id: Annotated[str, Form(max_length=200)],
        redirect_uri: Annotated[str, Form(max_length=2000)],
        state: Annotated[str, Form(max_length=500)],
        code_challenge: Annotated[str, Form(min_length=43, max_length=128)],
        subject: Annotated[str, Form(max_length=200)],
        nonce: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        problem = check_client(client_id, redirect_uri)
        if problem:
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        if subject not in known:
            return HTMLResponse("<p>Choose one of the people listed.</p>", status_code=400)
        code = secrets.token_urlsafe(32)
        with lock:
            now = time.time()
            for stale in [c for c, g in grants.items() if g.expires < now]:
                del grants[stale]
            grants[code] = _Grant(
                client_id, redirect_uri, subject, nonce or None, code_challenge, now + _CODE_TTL_S
            )
        query = urlencode({"code": code, "state": state})
        return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)

    @app.post("/token")
    def token(
        grant_type: Annotated[str, Form(max_length=50)],
        code: Annotated[str, Form(max_length=200)],
        redirect_uri: Annotated[str, Form(max_length=2000)],
        client_id: Annotated[str, Form(max_length=200)],
        code_verifier: Annotated[str | None, Form(min_length=43, max_length=128)] = None,
    ) -> Response:
        if grant_type != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code")
        with lock:
            grant = grants.pop(code, None)  # single use, whatever happens next
        if grant is None or grant.expires < time.time():
            return _oauth_error("invalid_grant", "unknown, used or expired code")
        if (grant.client_id, grant.redirect_uri) != (client_id, redirect_uri):
            return _oauth_error("invalid_grant", "the code was issued to another client")
        if code_verifier is None or not secrets.compare_digest(
            create_s256_code_challenge(code_verifier), grant.code_challenge
        ):
            return _oauth_error("invalid_grant", "PKCE verification failed")
        who = known[grant.subject]
        extra: dict[str, Any] = {"name": who.name, "aud": list(audiences)}
        access = dev.mint(
            who.subject,
            audience=audiences[0],
            roles=who.roles,
            source=who.source,
            ttl_s=ttl_s,
            extra=extra,
        )
        id_claims: dict[str, Any] = {"name": who.name, "azp": client_id}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        id_token = dev.mint(
            who.subject,
            audience=client_id,
            roles=who.roles,
            source=who.source,
            ttl_s=ttl_s,
            extra=id_claims,
        )
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": ttl_s,
                "id_token": id_token,
                "scope": "openid profile",
            },
            headers={"Cache-Control": "no-store"},
        )

    return app


def _persona_page(personas: Sequence[Persona], hidden: Mapping[str, str]) -> str:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
    )
    choices = "".join(
        f'<div class="choice"><input type="radio" id="p-{html.escape(p.subject)}" name="subject" '
        f'value="{html.escape(p.subject)}"{" checked" if i == 0 else ""}>'
        f'<label for="p-{html.escape(p.subject)}"><strong>{html.escape(p.name)}</strong> '
        f"({html.escape(p.subject)}): {html.escape(p.what)}</label></div>"
        for i, p in enumerate(personas)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Dev sign-in - fjo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:Arial,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
color:#0b0c0c}}.choice{{margin:.5rem 0}}button{{font-size:1.1rem;padding:.5rem 1rem;
background:#00703c;color:#fff;border:0}}button:focus{{outline:3px solid #fd0}}
.warn{{border-left:5px solid #d4351c;padding-left:1rem}}</style></head>
<body><main><h1>Dev sign-in</h1>
<p class="warn">For development and the demo only: pick who you are. A real deployment signs
people in with the organisation's own identity provider.</p>
<form method="post" action="/authorize">{fields}
<fieldset><legend>Sign in as</legend>{choices}</fieldset>
<p><button type="submit" id="sign-in">Sign in</button></p></form></main></body></html>"""


def persona_summary() -> list[str]:
    """One line per persona, for ``fjo demo --serve``."""
    return [
        f"{p.subject:<8} {p.name:<14} {p.what}" + (f" [{p.source}]" if p.source else "")
        for p in PERSONAS
    ]
