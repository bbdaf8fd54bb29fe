"""Every ingest route authenticates before it looks at the body: garbage without a valid token
is 401 problem+json, nothing is spooled or published. (Ingest does not audit authentication
decisions; access does, see tests/integration/access/test_authenticate_before_body.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import FakeBus, bearer

GARBAGE = [
    (b"\xff\xfe\x00garbage", "application/json"),
    (b'[{"record_id": ', "application/json"),
    (b"\xff\xfe\x00garbage\n", "application/x-ndjson"),
    (b"not,a\ncsv\xff", "text/csv"),
    (b"<xml/>", "application/xml"),
]


def operations(client: TestClient) -> list[tuple[str, str]]:
    """Every operation the document says needs a token, its path parameters filled in."""
    found = []
    for path, methods in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in methods.items():
            if operation.get("security"):
                found.append((method, re.sub(r"\{[^}]+\}", "x", path) + "?record_type=child"))
    return sorted(found)


def test_the_document_lists_every_route_as_needing_a_token(client: TestClient) -> None:
    paths = {path.split("?")[0] for _, path in operations(client)}
    assert paths == {
        "/v1/deliveries",
        "/v1/deliveries/batch",
        "/v1/deliveries/x",
        "/v1/objections",
        "/v1/objections/summary",
        "/v1/objections/x",
        "/v1/quarantine",
    }


@pytest.mark.parametrize(("body", "media"), GARBAGE)
def test_a_garbage_body_without_a_valid_token_is_401_problem_json_on_every_route(
    client: TestClient, bus: FakeBus, tmp_path: Path, body: bytes, media: str
) -> None:
    forged = bearer(DevIssuer.generate(issuer="https://dev.fjo.invalid"))
    for method, url in operations(client):
        for credentials in ({}, forged, {"Authorization": "Basic Y3ltcnU6cHVzaA=="}):
            headers: dict[str, Any] = {"Content-Type": media, **credentials}
            r = client.request(method, url, content=body, headers=headers)
            assert r.status_code == 401, (method, url, media, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["status"] == 401
    assert bus.log.messages == []
    spool = tmp_path / "spool"
    assert not spool.exists() or not any(spool.iterdir())


def test_a_valid_token_still_gets_the_body_checked(client: TestClient, issuer: DevIssuer) -> None:
    r = client.post(
        "/v1/deliveries/batch?record_type=child",
        content=b'[{"record_id": ',
        headers={**bearer(issuer), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["type"].endswith("batch-not-json")
