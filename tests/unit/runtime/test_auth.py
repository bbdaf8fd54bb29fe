"""Bearer-token verification: what is accepted and every reason a token is refused."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from services.runtime.auth import AuthError, DevIssuer, Principal, bearer_principal

AUD = "fjo-test"


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer.generate(issuer="https://dev.fjo.invalid")


def test_a_token_minted_by_the_dev_issuer_verifies_with_subject_roles_and_source(
    issuer: DevIssuer,
) -> None:
    token = issuer.mint("cafcass", audience=AUD, roles=["partner"], source="cafcass-england")
    principal = issuer.verifier(audience=AUD).verify(token)
    assert principal.subject == "cafcass"
    assert principal.roles == frozenset({"partner"})
    assert principal.source == "cafcass-england"


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda i: i.mint("a", audience="someone-else"), "audience"),
        (lambda i: i.mint("a", audience=AUD, ttl_s=-3600), "expired"),
        (lambda i: DevIssuer.generate(issuer=i.issuer).mint("a", audience=AUD), "unknown key"),
        (
            lambda i: DevIssuer(i._key, issuer="https://evil.invalid").mint("a", audience=AUD),
            "issuer",
        ),
        (lambda i: jwt.encode({"sub": "a", "aud": AUD}, "k" * 32, algorithm="HS256"), "algorithm"),
        (lambda i: "not-a-jwt", "not valid"),
    ],
    ids=["wrong-audience", "expired", "foreign-key", "wrong-issuer", "hs256", "garbage"],
)
def test_tokens_that_must_not_pass_are_refused_with_the_reason(
    issuer: DevIssuer, make_token, reason: str
) -> None:
    with pytest.raises(AuthError, match=reason):
        issuer.verifier(audience=AUD).verify(make_token(issuer))


def test_a_token_without_an_expiry_is_refused(issuer: DevIssuer) -> None:
    claims = {"sub": "a", "aud": AUD, "iss": issuer.issuer, "iat": int(time.time())}
    token = jwt.encode(claims, issuer._key, algorithm="ES256", headers={"kid": issuer.key_id})
    with pytest.raises(AuthError, match="not valid"):
        issuer.verifier(audience=AUD).verify(token)


def test_the_dev_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "dev-issuer.pem"
    first = DevIssuer.from_file(path, issuer="https://dev")
    assert path.stat().st_mode & 0o077 == 0
    second = DevIssuer.from_file(path, issuer="https://dev")
    assert second.key_id == first.key_id
    token = first.mint("x", audience=AUD)
    assert second.verifier(audience=AUD).verify(token).subject == "x"


def test_the_dev_key_file_must_hold_an_ec_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = tmp_path / "k.pem"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="EC private key"):
        DevIssuer.from_file(path, issuer="https://dev")


def test_the_fastapi_dependency_answers_401_and_reports_each_decision(issuer: DevIssuer) -> None:
    decisions: list[tuple[str | None, str]] = []
    verifier = issuer.verifier(audience=AUD)
    who = bearer_principal(
        lambda: verifier, lambda p, why: decisions.append((p.subject if p else None, why))
    )
    app = FastAPI()

    @app.get("/me")
    def me(principal: Principal = Depends(who)) -> dict[str, str]:
        return {"sub": principal.subject}

    client = TestClient(app)
    assert client.get("/me").status_code == 401
    bad = client.get("/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert "invalid_token" in bad.headers["www-authenticate"]
    ok = client.get("/me", headers={"Authorization": f"Bearer {issuer.mint('r1', audience=AUD)}"})
    assert ok.json() == {"sub": "r1"}
    assert [d[0] for d in decisions] == [None, None, "r1"]


def test_fjo_token_refuses_a_lifetime_the_services_would_refuse(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fjo.cli import app
    from services.runtime.auth import MAX_LIFETIME_S

    key = tmp_path / "dev-issuer.pem"
    args = ["token", "--subject", "a", "--audience", AUD, "--key-file", str(key)]
    too_long = CliRunner().invoke(app, [*args, "--ttl", str(MAX_LIFETIME_S + 1)])
    assert too_long.exit_code == 2 and "at most" in too_long.output
    longest = CliRunner().invoke(app, [*args, "--ttl", str(MAX_LIFETIME_S)])
    assert longest.exit_code == 0, longest.output
    verifier = DevIssuer.from_file(key, issuer="https://dev.fjo.invalid").verifier(audience=AUD)
    assert verifier.verify(longest.output.strip()).subject == "a"
