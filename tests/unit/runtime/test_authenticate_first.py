"""Authentication comes before the body: without a valid token a route answers 401 whatever
it is sent, each decision is reported once, and the operational routes stay public.

(No ``from __future__ import annotations``: the routes below depend on local functions, which
FastAPI could not resolve from string annotations.)
"""

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.runtime.app import PROBLEM_JSON, create_app
from services.runtime.auth import (
    AuthenticatedRoute,
    DevIssuer,
    Principal,
    app_principal,
    bearer_principal,
    routes_not_authenticating_first,
)

AUD = "fjo-test"
GARBAGE = [
    (b"\xff\xfe{not json", "application/json"),  # not UTF-8: 400 before this change
    (b'{"name": ', "application/json"),  # truncated JSON: 422 json_invalid
    (b"name=x", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
]


class Item(BaseModel):
    name: str
    size: int


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer.generate(issuer="https://dev.fjo.invalid")


def build(issuer: DevIssuer, decisions: list[str], *, guarded: bool = True) -> FastAPI:
    verifier = issuer.verifier(audience=AUD)
    who = bearer_principal(lambda: verifier, lambda p, why: decisions.append(why))
    app = create_app(title="t", version="0")
    router = APIRouter(prefix="/v1", route_class=AuthenticatedRoute if guarded else APIRoute)

    def member(principal: Principal = Depends(who)) -> Principal:
        return principal  # a dependency on the dependency: still found

    @router.post("/items")
    def create(item: Item, principal: Principal = Depends(member)) -> dict[str, str]:
        return {"owner": principal.subject, "name": item.name}

    @app.put("/direct/{n}")
    def direct(n: int, item: Item, principal: Principal = Depends(who)) -> dict[str, int]:
        del principal
        return {"n": n, "size": item.size}

    app.include_router(router)
    app.state.who = who
    return app


def bearer(issuer: DevIssuer, subject: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(subject, audience=AUD)}"}


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


@pytest.mark.parametrize(("body", "media"), GARBAGE)
@pytest.mark.parametrize("path", ["/v1/items", "/direct/nan"])
def test_a_garbage_body_without_a_token_is_401_and_the_refusal_is_reported(
    issuer: DevIssuer, body: bytes, media: str, path: str
) -> None:
    decisions: list[str] = []
    with TestClient(build(issuer, decisions)) as client:
        method = client.post if path.startswith("/v1") else client.put
        assert_401(method(path, content=body, headers={"Content-Type": media}))
        forged = DevIssuer.generate(issuer="https://dev.fjo.invalid").mint("eve", audience=AUD)
        assert_401(
            method(
                path,
                content=body,
                headers={"Content-Type": media, "Authorization": f"Bearer {forged}"},
            )
        )
    assert decisions == ["missing bearer token", "token signed by an unknown key"]


def test_with_a_valid_token_the_body_is_still_validated_and_decided_on_once(
    issuer: DevIssuer,
) -> None:
    decisions: list[str] = []
    with TestClient(build(issuer, decisions)) as client:
        bad = client.post(
            "/v1/items",
            content=b'{"name": ',
            headers={**bearer(issuer), "Content-Type": "application/json"},
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["type"] == "json_invalid"
        ok = client.post("/v1/items", json={"name": "a", "size": 1}, headers=bearer(issuer))
        assert ok.json() == {"owner": "alice", "name": "a"}
        direct = client.put("/direct/3", json={"name": "a", "size": 2}, headers=bearer(issuer))
        assert direct.json() == {"n": 3, "size": 2}
    assert decisions == ["authenticated"] * 3  # one verification (and audit) per request


def test_operational_routes_and_the_api_documents_stay_public(issuer: DevIssuer) -> None:
    with TestClient(build(issuer, [])) as client:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert client.get(path).status_code == 200, path


def test_an_app_whose_router_would_read_the_body_first_refuses_to_start(
    issuer: DevIssuer,
) -> None:
    app = build(issuer, [], guarded=False)
    assert routes_not_authenticating_first(app) == ["POST /v1/items"]
    refused = pytest.raises(RuntimeError, match="route_class=AuthenticatedRoute: POST /v1/items")
    with refused, TestClient(app):
        pass
    assert routes_not_authenticating_first(build(issuer, [])) == []


def test_an_overridden_authentication_dependency_decides_for_itself(issuer: DevIssuer) -> None:
    app = build(issuer, [])
    app.dependency_overrides[app.state.who] = lambda: Principal("tester")
    with TestClient(app) as client:
        r = client.post("/v1/items", json={"name": "a", "size": 1})
    assert r.json() == {"owner": "tester", "name": "a"}


# One module-level route served by two apps, each with its own issuer (``app_principal``).
shared = APIRouter(prefix="/v1", route_class=AuthenticatedRoute)


@shared.post("/shared")
def shared_create(
    item: Item,
    principal: Principal = Depends(app_principal(lambda request: request.app.state.who)),
) -> dict[str, str]:
    return {"owner": principal.subject, "name": item.name}


def test_a_module_level_route_authenticates_first_with_the_verifier_of_the_app_serving_it() -> None:
    apps = {}
    for name in ("a", "b"):
        issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
        decisions: list[str] = []
        verifier = issuer.verifier(audience=AUD)
        app = create_app(title=name, version="0")
        app.state.who = bearer_principal(
            lambda v=verifier: v, lambda p, why, d=decisions: d.append(why)
        )
        app.include_router(shared)
        apps[name] = (app, issuer, decisions)
    (app_a, issuer_a, decisions_a), (_app_b, issuer_b, decisions_b) = apps["a"], apps["b"]
    with TestClient(app_a) as client:
        ok = client.post("/v1/shared", json={"name": "x", "size": 1}, headers=bearer(issuer_a))
        assert ok.status_code == 200 and ok.json() == {"owner": "alice", "name": "x"}
        # b's token on a's app: refused before the (garbage) body is looked at.
        assert_401(client.post("/v1/shared", content=b"\xff{", headers=bearer(issuer_b, "bob")))
    assert decisions_a[0] == "authenticated" and len(decisions_a) == 2
    assert decisions_b == []
    assert routes_not_authenticating_first(app_a) == []
