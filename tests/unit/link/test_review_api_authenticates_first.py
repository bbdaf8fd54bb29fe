"""The clerical-review API authenticates before it reads the body: a garbage decision without
a valid token is 401 problem+json, with a valid reviewer's token the body is checked.

Its router is built with ``route_class=AuthenticatedRoute``, whose bearer check runs before
FastAPI reads the body; the reviewer dependency reuses that decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.link.config import LinkSettings
from services.link.entrypoints import create_app
from services.runtime.auth import DevIssuer
from services.runtime.bus.embedded import EmbeddedBus

AUDIENCE = "fjo-link"

RECORD = "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"  # shaped like a record token


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer.generate(issuer="https://dev.fjo.invalid")


@pytest.fixture
def client(tmp_path: Path, issuer: DevIssuer) -> TestClient:
    settings = LinkSettings(
        environment="dev",
        database_url=f"sqlite+pysqlite:///{tmp_path / 'link.db'}",
        dev_key_dir=tmp_path / "keys",
    )
    bus = EmbeddedBus(f"sqlite+pysqlite:///{tmp_path / 'bus.db'}")
    app = create_app(settings, verifier=issuer.verifier(audience=AUDIENCE), bus=bus)
    with TestClient(app) as client:
        yield client
    bus.close()


@pytest.mark.parametrize(
    "body", [b"\xff\xfe\x00garbage", b'{"accept": ', b"accept=true"], ids=["bytes", "json", "form"]
)
def test_a_garbage_decision_without_a_valid_token_is_401(client: TestClient, body: bytes) -> None:
    forged = DevIssuer.generate(issuer="https://dev.fjo.invalid").mint("eve", audience=AUDIENCE)
    for credentials in ({}, {"Authorization": f"Bearer {forged}"}):
        r = client.post(
            f"/v1/review/{RECORD}",
            content=body,
            headers={"Content-Type": "application/json", **credentials},
        )
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_reviewer_lists_reviews_and_a_garbage_decision_of_theirs_is_invalid(
    client: TestClient, issuer: DevIssuer
) -> None:
    token = issuer.mint("rita", audience=AUDIENCE, roles=["link-reviewer"])
    listed = client.get("/v1/review", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json()["items"] == []
    r = client.post(
        f"/v1/review/{RECORD}",
        content=b'{"accept": ',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
