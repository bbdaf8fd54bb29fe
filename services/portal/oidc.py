"""Sign-in with OpenID Connect: the authorisation code flow with PKCE (S256), state and nonce.

authlib's OAuth2 client builds the authorisation URL (with the S256 code challenge) and
exchanges the code; PyJWT verifies the ID token against the issuer's JWKS (issuer, audience =
our client id, expiry, nonce). Discovery is read once, at the first sign-in, so the portal
starts while the issuer is still starting.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from services.portal.config import OidcSettings
from services.portal.sessions import PendingLogin

__all__ = ["OidcClient", "SignInError", "SignInResult"]

_ID_TOKEN_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]


class SignInError(Exception):
    """The issuer's answer cannot be trusted or used; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class SignInResult:
    subject: str
    name: str
    roles: frozenset[str]
    access_token: str
    id_token: str
    expires_at: float


class OidcClient:
    """The portal as a relying party of one issuer."""

    def __init__(self, settings: OidcSettings, *, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (fetched once; its issuer must be ours)."""
        with self._lock:
            if self._metadata is None:
                url = self._settings.discovery_url or (
                    self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
                try:
                    doc = httpx.get(url, timeout=self._timeout).raise_for_status().json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise SignInError("the sign-in service cannot be reached") from exc
                if doc.get("issuer") != self._settings.issuer:
                    raise SignInError("the sign-in service names another issuer")
                if "S256" not in doc.get("code_challenge_methods_supported", ["S256"]):
                    raise SignInError("the sign-in service does not support PKCE S256")
                self._metadata = doc
                self._jwks = jwt.PyJWKClient(doc["jwks_uri"], cache_keys=True)
            return self._metadata

    def _client(self, redirect_uri: str) -> OAuth2Client:
        secret = self._settings.client_secret
        return OAuth2Client(
            client_id=self._settings.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            redirect_uri=redirect_uri,
            scope=self._settings.scope,
            code_challenge_method="S256",
            timeout=self._timeout,
        )

    def start(self, redirect_uri: str, next_path: str) -> tuple[str, PendingLogin]:
        """The URL to send the browser to, and what the callback must find again."""
        meta = self.metadata()
        pending = PendingLogin(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            redirect_uri=redirect_uri,
            next_path=next_path,
        )
        with self._client(redirect_uri) as client:
            url, _state = client.create_authorization_url(
                meta["authorization_endpoint"],
                state=pending.state,
                code_verifier=pending.code_verifier,
                nonce=pending.nonce,
            )
        return url, pending

    def finish(self, pending: PendingLogin, *, code: str, state: str) -> SignInResult:
        """Exchange the code (with the PKCE verifier) and verify the ID token."""
        if state != pending.state:
            raise SignInError("the sign-in answer does not belong to this sign-in")
        meta = self.metadata()
        with self._client(pending.redirect_uri) as client:
            try:
                token = client.fetch_token(
                    meta["token_endpoint"],
                    code=code,
                    code_verifier=pending.code_verifier,
                    grant_type="authorization_code",
                )
            except Exception as exc:  # authlib raises its own OAuthError, httpx its errors
                raise SignInError("the sign-in service refused the sign-in") from exc
        id_token = token.get("id_token")
        access_token = token.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise SignInError("the sign-in service gave no ID token or access token")
        claims = self._verify_id_token(id_token, pending.nonce)
        expires_in = token.get("expires_in")
        expires_at = float(
            token.get("expires_at")
            or (time.time() + float(expires_in) if expires_in else claims["exp"])
        )
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise SignInError("the ID token's roles are not a list of names")
        name = claims.get("name") or claims.get("preferred_username") or claims["sub"]
        return SignInResult(
            subject=str(claims["sub"]),
            name=str(name),
            roles=frozenset(roles),
            access_token=access_token,
            id_token=id_token,
            expires_at=expires_at,
        )

    def _verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=_ID_TOKEN_ALGORITHMS,
                audience=self._settings.client_id,
                issuer=self._settings.issuer,
                leeway=30,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise SignInError("the ID token is not valid") from exc
        if claims.get("nonce") != nonce:
            raise SignInError("the ID token was not issued for this sign-in")
        return claims

    def end_session_url(self, id_token: str | None, after: str) -> str | None:
        """The issuer's log-out page (RP-initiated logout), if it has one."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except SignInError:
            return None
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": after, "client_id": self._settings.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return str(httpx.URL(endpoint, params=params))
