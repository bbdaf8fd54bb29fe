"""Token fuzzing: forged and malformed bearer tokens against the verifier and the three APIs.

The corpus (``tests/fuzz/forged_tokens.py``, forged with joserfc and by hand) tries alg
confusion, kid games, huge and broken tokens and wrong types in every claim. Each API (ingest,
link's review, access) must answer every one 401 problem+json with a Bearer challenge, never a
server error, and accept the control token; access audits each refusal. Each test prints what
it tried and refused (``pytest -s``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.access.entrypoints import create_app as access_app
from services.access.storage.models import AuditLogRow
from services.ingest.entrypoints import create_app as ingest_app
from services.link.entrypoints import create_app as link_app
from services.runtime.auth import AuthError, DevIssuer, Principal, TokenVerifier, bearer_principal
from tests.fuzz.forged_tokens import Forgery, TokenCorpus, all_of
from tests.integration.access.conftest import settings_for as access_settings
from tests.unit.ingest.support import FakeBus
from tests.unit.ingest.support import settings_for as ingest_settings
from tests.unit.link.review_support import REVIEWER_ROLE, results_bus
from tests.unit.link.review_support import settings_for as link_settings

ISSUER = "https://dev.fjo.invalid"
KEY = ec.generate_private_key(ec.SECP256R1())
DEV = DevIssuer(KEY, issuer=ISSUER)


def corpus(audience: str, roles: tuple[str, ...] = (), source: str | None = None) -> TokenCorpus:
    return TokenCorpus(
        issuer=ISSUER,
        audience=audience,
        signing_key=KEY,
        kid=DEV.key_id,
        subject="mallory",
        roles=roles,
        source=source,
    )


def refusals(
    client: TestClient, url: str, control: str, forgeries: list[Forgery]
) -> tuple[Counter[str], list[str]]:
    """Each forgery sent to ``url``: a tally of outcomes and what was wrong with each miss."""
    ok = client.get(url, headers={"Authorization": f"Bearer {control}"})
    assert ok.status_code == 200, f"the control token was not accepted: {ok.status_code} {ok.text}"
    tally: Counter[str] = Counter()
    misses: list[str] = []
    for forgery in forgeries:
        r = client.get(url, headers={"Authorization": f"Bearer {forgery.token}"})
        tally["tried"] += 1
        media = r.headers.get("content-type", "")
        body = r.json() if media == "application/problem+json" else {}
        if (
            r.status_code == 401
            and body.get("status") == 401
            and r.headers.get("www-authenticate", "").startswith("Bearer")
        ):
            tally["refused"] += 1
            continue
        tally[f"answered {r.status_code}"] += 1
        misses.append(f"{forgery.label}: {r.status_code} {media} {r.text[:120]}")
    return tally, misses


def report(api: str, tally: Counter[str]) -> None:
    others = ", ".join(f"{n} {what}" for what, n in sorted(tally.items()) if what.startswith("a"))
    print(f"\ntoken fuzzing, {api}: tried {tally['tried']}, refused {tally['refused']} {others}")


def test_the_verifier_refuses_every_forged_token_with_an_auth_error() -> None:
    verifier = DEV.verifier(audience="fjo-test")
    make = corpus("fjo-test", roles=("admin",), source="cafcass-cymru")
    assert verifier.verify(make.valid()).subject == "mallory"
    crashed, accepted, refused = [], [], 0
    for forgery in all_of(make):
        try:
            verifier.verify(forgery.token)
        except AuthError:
            refused += 1
        except Exception as exc:
            crashed.append(f"{forgery.label}: {type(exc).__name__}")
        else:
            accepted.append(forgery.label)
    print(
        f"\ntoken fuzzing, verifier: tried {refused + len(crashed) + len(accepted)}, "
        f"refused {refused}"
    )
    assert (crashed, accepted) == ([], [])
    assert refused >= 150


def test_ingest_refuses_every_forged_token_with_401(tmp_path: Path) -> None:
    make = corpus("fjo-ingest", roles=("partner",), source="cafcass-cymru")
    settings = ingest_settings(tmp_path, rate_per_s=1e6, rate_burst=1_000_000)
    app = ingest_app(settings, bus=FakeBus(), verifier=DEV.verifier(audience="fjo-ingest"))
    with TestClient(app, raise_server_exceptions=False) as client:
        tally, misses = refusals(
            client,
            "/v1/deliveries",
            make.valid(),
            all_of(make),
        )
    report("ingest GET /v1/deliveries", tally)
    assert misses == []


@pytest.fixture
def link(tmp_path: Path) -> Iterator[FastAPI]:
    bus = results_bus(tmp_path)
    try:
        yield link_app(link_settings(tmp_path), verifier=DEV.verifier(audience="fjo-link"), bus=bus)
    finally:
        bus.close()


def test_link_review_refuses_every_forged_token_with_401(link: FastAPI) -> None:
    make = corpus("fjo-link", roles=(REVIEWER_ROLE,))
    with TestClient(link, raise_server_exceptions=False) as client:
        tally, misses = refusals(
            client,
            "/v1/review",
            make.valid(),
            all_of(make),
        )
    report("link GET /v1/review", tally)
    assert misses == []


def test_access_refuses_every_forged_token_with_401_and_audits_each_refusal(
    tmp_path: Path,
) -> None:
    make = corpus("fjo-access", roles=("admin",))
    settings = access_settings(f"sqlite+pysqlite:///{tmp_path / 'access.db'}", tmp_path)
    app = access_app(settings, verifier=DEV.verifier(audience="fjo-access"))
    tried = all_of(make)
    with TestClient(app, raise_server_exceptions=False) as client:
        tally, misses = refusals(client, "/v1/projects", make.valid(), tried)
        # Refusals are audited per source and window: the first few in full, the rest
        # counted in the window's summary, written once it closes (here: flushed now).
        app.state.access.refusals.flush(everything=True)
        with app.state.access.sessions() as session:
            rows = session.execute(
                select(AuditLogRow)
                .where(AuditLogRow.action.in_(("auth.authenticate", "audit.refusals")))
                .order_by(AuditLogRow.seq)
            ).scalars()
            audited = [(r.actor, r.outcome, r.action, json.loads(r.detail)) for r in rows]
    report("access GET /v1/projects", tally)
    assert misses == []
    assert audited[0][:2] == ("mallory", "ok")  # the control
    denied = [d for _, _, action, d in audited[1:] if action == "auth.authenticate"]
    summaries = [d for _, _, action, d in audited if action == "audit.refusals"]
    counted = sum(d["refused"] - d["in_full"] for d in summaries)
    assert len(denied) + counted == len(tried)
    assert all(
        actor is None and outcome == "denied" and (d.get("reason") or d.get("reasons"))
        for actor, outcome, _, d in audited[1:]
    )


def test_every_refusal_reaches_the_services_decision_hook() -> None:
    """What a service audits: each forged token is one refused decision with its reason."""
    decisions: list[tuple[Principal | None, str]] = []
    verifier = DEV.verifier(audience="fjo-test")
    who = bearer_principal(lambda: verifier, lambda p, why: decisions.append((p, why)))
    app = FastAPI()

    @app.get("/me")
    def me(principal: Principal = Depends(who)) -> str:
        return principal.subject

    rs256 = jwt.encode(
        corpus("fjo-test").claims(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": DEV.key_id},
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/me", headers={"Authorization": f"Bearer {rs256}"})
    assert r.status_code == 401
    assert decisions == [(None, "token algorithm does not match its key")]


def rsa_jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, object]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "use": "sig"}]}


def test_an_rsa_key_without_alg_verifies_rs256_only() -> None:
    """A JWKS key is bound to one algorithm: an RSA key that names none verifies RS256 (its
    type's default) and nothing else, not even PS256 by the same key, nor HMAC keyed with it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = TokenVerifier(issuer=ISSUER, audience="fjo-test", jwks=rsa_jwks(key, "k1"))
    claims = corpus("fjo-test").claims()
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert verifier.verify(good).subject == "mallory"
    ps256 = jwt.encode(claims, key, algorithm="PS256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="does not match its key"):
        verifier.verify(ps256)
    es256 = jwt.encode(claims, KEY, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(AuthError, match="does not match its key"):
        verifier.verify(es256)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = TokenCorpus(ISSUER, "fjo-test", KEY, "k1").hmac_token(
        json.dumps(claims).encode(), pem, "HS256"
    )
    with pytest.raises(AuthError, match="algorithm not allowed"):
        verifier.verify(hs256)
