"""Bearer-token authentication: OIDC-style JWT verification and a dev issuer.

Production verifies tokens from the organisation's OIDC issuer against its JWKS (issuer,
audience, expiry, algorithm allow-list). The embedded default and the tests use
``DevIssuer``: a real signing key kept in a file, so every process of a local stack
verifies the same tokens, and ``fjo token`` can mint them. Authorisation per object is the
services' job; this module only says who is calling and with which roles.

Routes authenticate before anything else: FastAPI reads and parses a request's body before
it runs any dependency, so an unauthenticated caller would learn about body validation (and
the authentication audit would never hear of them). ``AuthenticatedRoute`` runs the bearer
check of a route's ``bearer_principal`` dependency first; the dependency then reuses that
decision (one verification, one audit record per request).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.runtime.settings import Environment

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_LIFETIME_S",
    "MAX_TOKEN_CHARS",
    "AuthConfig",
    "AuthError",
    "AuthenticatedRoute",
    "AuthenticatedSettings",
    "DevIssuer",
    "Principal",
    "TokenVerifier",
    "app_principal",
    "bearer_principal",
    "configured_verifier",
    "routes_not_authenticating_first",
]

ALLOWED_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
"""Asymmetric only: a shared-secret HS256 token could be forged by anyone holding the key."""

MAX_TOKEN_CHARS = 8 * 1024
"""Longer bearer tokens are refused unparsed: an OIDC access token is a few hundred bytes to
two kilobytes, and parsing (then verifying) an attacker's megabyte costs us, not them."""

MAX_LIFETIME_S = 12 * 3600
"""The longest ``exp - iat`` accepted: a stolen token must not stay good for days (OIDC access
tokens live minutes; long benchmark runs mint a few hours)."""

_LEEWAY_S = 30
_MAX_KID_CHARS = 256
_MAX_SUBJECT_CHARS = 256
_TIME_CLAIMS = ("exp", "iat", "nbf")

# What hostile input makes the JOSE library raise besides its own errors (a key of one type
# handed to another algorithm's code raised TypeError and answered 500): refused, never a crash.
_MALFORMED = (ValueError, TypeError, ArithmeticError, RecursionError, LookupError)


class AuthError(Exception):
    """The bearer token is missing, malformed, expired, or not for us."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject, roles and (for partners) the source agency."""

    subject: str
    roles: frozenset[str] = frozenset()
    source: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    def has_role(self, role: str) -> bool:
        return role in self.roles


class TokenVerifier:
    """Verifies bearer JWTs against a JWKS: signature, issuer, audience, expiry, algorithm.

    Each key verifies only its own algorithm (the JWK's ``alg``, else its key type's default,
    e.g. RS256 for an RSA key without ``alg``): a token naming another algorithm under a real
    key id is refused before any signature code sees the key. Then the claims: ``sub`` a
    non-empty printable string, ``exp``/``iat``/``nbf`` plain numbers, ``iat`` required and
    ``exp - iat`` at most ``max_lifetime_s``, ``roles`` a list of strings, ``fjo_source`` a
    non-empty string when present.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        algorithms: Iterable[str] = ALLOWED_ALGORITHMS,
        max_lifetime_s: int = MAX_LIFETIME_S,
    ) -> None:
        if (jwks is None) == (jwks_url is None):
            raise ValueError("give exactly one of jwks or jwks_url")
        self._issuer = issuer
        self._audience = audience
        self._algorithms = [a for a in algorithms if a in ALLOWED_ALGORITHMS]
        self._max_lifetime_s = max_lifetime_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        if jwks is not None:
            for key in jwt.PyJWKSet.from_dict(dict(jwks)).keys:
                if key.key_id and key.public_key_use in (None, "sig"):
                    self._keys[key.key_id] = key

    def verify(self, token: str) -> Principal:
        """The principal the token names, or ``AuthError`` saying why it is refused."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("token too large")
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if not isinstance(alg, str) or alg not in self._algorithms:
                raise AuthError("token algorithm not allowed")
            key = self._key_for(header)
            if key.algorithm_name != alg:
                raise AuthError("token algorithm does not match its key")
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except AuthError:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"token not valid: {type(exc).__name__}") from exc
        except _MALFORMED as exc:
            raise AuthError(f"token malformed: {type(exc).__name__}") from exc
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        if (
            not isinstance(subject, str)
            or not subject.strip()
            or not subject.isprintable()
            or len(subject) > _MAX_SUBJECT_CHARS
        ):
            raise AuthError("token subject must be a non-empty printable string")
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise AuthError(f"token {name} claim must be a number of seconds")
        if claims["exp"] - claims["iat"] > self._max_lifetime_s:
            raise AuthError(f"token lifetime over the maximum of {self._max_lifetime_s} s")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("token roles claim must be a list of strings")
        source = claims.get("fjo_source")
        if source is not None and (not isinstance(source, str) or not source):
            raise AuthError("token fjo_source claim must be a non-empty string")
        return Principal(subject=subject, roles=frozenset(roles), source=source, claims=claims)

    def _key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        if len(kid) > _MAX_KID_CHARS:
            raise AuthError("token signed by an unknown key")
        if self._client is not None:
            return self._client.get_signing_key(kid)
        if kid not in self._keys:
            raise AuthError("token signed by an unknown key")
        return self._keys[kid]


class DevIssuer:
    """A local OIDC-like issuer for the embedded default and tests (ES256, key in a file)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, *, issuer: str) -> None:
        self._key = private_key
        self.issuer = issuer
        public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
        self.key_id = _thumbprint(public_jwk)
        self._public_jwk = {**public_jwk, "kid": self.key_id, "alg": "ES256", "use": "sig"}

    @classmethod
    def generate(cls, *, issuer: str) -> DevIssuer:
        return cls(ec.generate_private_key(ec.SECP256R1()), issuer=issuer)

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, create: bool = True) -> DevIssuer:
        """Load the signing key from ``path`` (PEM); create it (mode 0600) when missing."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} does not hold an EC private key")
            return cls(key, issuer=issuer)
        if not create:
            raise FileNotFoundError(path)
        issuer_obj = cls.generate(issuer=issuer)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = issuer_obj._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return issuer_obj

    def jwks(self) -> dict[str, Any]:
        """The public key set a verifier needs."""
        return {"keys": [dict(self._public_jwk)]}

    def verifier(self, *, audience: str) -> TokenVerifier:
        return TokenVerifier(issuer=self.issuer, audience=audience, jwks=self.jwks())

    def mint(
        self,
        subject: str,
        *,
        audience: str,
        roles: Iterable[str] = (),
        source: str | None = None,
        ttl_s: int = 3600,
        extra: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed token for ``subject``; partners carry their agency in ``fjo_source``."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_s,
            "jti": str(uuid.uuid4()),
            "roles": sorted(set(roles)),
        }
        if source is not None:
            claims["fjo_source"] = source
        if extra:
            claims.update(extra)
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.key_id})


class AuthConfig(Protocol):
    """A service's ``auth`` settings: the issuer, our audience, and where the keys come from."""

    @property
    def issuer(self) -> str: ...

    @property
    def audience(self) -> str: ...

    @property
    def jwks_url(self) -> str | None: ...

    @property
    def dev_key_file(self) -> Path: ...


class AuthenticatedSettings(Protocol):
    """The settings of a service whose API takes bearer tokens."""

    @property
    def auth(self) -> AuthConfig: ...

    @property
    def environment(self) -> Environment: ...


def configured_verifier(settings: AuthenticatedSettings) -> TokenVerifier:
    """The organisation's JWKS when configured; else, only in an explicit dev environment,
    the local dev issuer's key file (created on first use). A test or prod environment
    never trusts the dev issuer, whose key sits in a file anyone on the machine may mint with."""
    auth = settings.auth
    if auth.jwks_url:
        return TokenVerifier(issuer=auth.issuer, audience=auth.audience, jwks_url=auth.jwks_url)
    if settings.environment is not Environment.DEV:
        raise RuntimeError(
            f"no JWKS URL configured (environment={settings.environment.value}; "
            "the dev issuer is trusted only with FJO_ENVIRONMENT=dev)"
        )
    return DevIssuer.from_file(auth.dev_key_file, issuer=auth.issuer).verifier(
        audience=auth.audience
    )


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    # RFC 7638 thumbprint of an EC key: the required members, sorted, no whitespace.
    import base64
    import hashlib

    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_bearer = HTTPBearer(auto_error=False)

_DECIDED = "fjo.authenticated"
"""Request scope key: the principals ``AuthenticatedRoute`` verified, by dependency."""

AuthenticateFirst = Callable[[Request], Awaitable[None]]


def bearer_principal(
    verifier_provider: Callable[[], TokenVerifier],
    on_decision: Callable[[Principal | None, str], None] | None = None,
) -> Callable[..., Principal]:
    """A FastAPI dependency: the verified caller, or 401 with ``WWW-Authenticate: Bearer``.

    ``on_decision`` hears every outcome (principal or None, reason) so a service can audit
    authentication decisions. Routes of class ``AuthenticatedRoute`` decide before the body
    is read; the dependency then returns that decision instead of deciding again.
    """

    def decide(credentials: HTTPAuthorizationCredentials | None) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            if on_decision:
                on_decision(None, "missing bearer token")
            raise HTTPException(
                401, "Authentication required", headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            principal = verifier_provider().verify(credentials.credentials)
        except AuthError as exc:
            if on_decision:
                on_decision(None, str(exc))
            raise HTTPException(
                401,
                "Authentication failed",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc
        if on_decision:
            on_decision(principal, "authenticated")
        return principal

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        decided: Principal | None = request.scope.get(_DECIDED, {}).get(dependency)
        if decided is not None:
            return decided
        return decide(credentials)

    async def authenticate_first(request: Request) -> None:
        # Sync work (a JWKS fetch, the audit's database write) off the event loop.
        principal = await run_in_threadpool(decide, await _bearer(request))
        request.scope.setdefault(_DECIDED, {})[dependency] = principal

    dependency.authenticate_first = authenticate_first  # type: ignore[attr-defined]
    return dependency


def app_principal(
    dependency_of: Callable[[Request], Callable[..., Principal]],
) -> Callable[..., Principal]:
    """A dependency that runs the ``bearer_principal`` dependency of the app serving the
    request (``dependency_of(request)``, e.g. from ``request.app.state``), so that routes
    declared once at module level authenticate with their app's verifier, and still before
    the body is read (``AuthenticatedRoute`` finds the delegate's first step)."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return dependency_of(request)(request, credentials)

    async def authenticate_first(request: Request) -> None:
        step: AuthenticateFirst = dependency_of(request).authenticate_first  # type: ignore[attr-defined]
        await step(request)

    dependency.authenticate_first = authenticate_first  # type: ignore[attr-defined]
    return dependency


def _authentication_steps(dependant: Dependant) -> list[tuple[Any, AuthenticateFirst]]:
    """The ``bearer_principal`` dependencies anywhere in a route's dependency tree."""
    steps: list[tuple[Any, AuthenticateFirst]] = []
    pending = list(dependant.dependencies)
    while pending:
        sub = pending.pop(0)
        step = getattr(sub.call, "authenticate_first", None)
        if step is not None and all(call is not sub.call for call, _ in steps):
            steps.append((sub.call, step))
        pending.extend(sub.dependencies)
    return steps


class AuthenticatedRoute(APIRoute):
    """An ``APIRoute`` that verifies the bearer token before FastAPI reads the body, so a
    caller without a valid token gets 401 (and the audit hears of it) whatever they send."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        steps = _authentication_steps(self.dependant)
        if not steps:
            return handler

        async def authenticate_then_handle(request: Request) -> Response:
            overrides = getattr(request.app, "dependency_overrides", {})
            for call, step in steps:
                if call not in overrides:  # an overridden dependency decides for itself
                    await step(request)
            return await handler(request)

        return authenticate_then_handle


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # Included routers (FastAPI keeps them as a node holding the original router).
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def routes_not_authenticating_first(app: FastAPI) -> list[str]:
    """Routes that authenticate with ``bearer_principal`` but would read the body first."""
    return sorted(
        f"{','.join(sorted(route.methods or ()))} {route.path}"
        for route in _api_routes(app.router.routes)
        if _authentication_steps(route.dependant) and not isinstance(route, AuthenticatedRoute)
    )
