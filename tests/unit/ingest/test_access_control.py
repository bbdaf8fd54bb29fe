"""Only partners get in, each writes only as its own agency and reads only its own receipts."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import FakeBus, bearer, child, ndjson_delivery

NDJSON = {"Content-Type": "application/x-ndjson"}
ROUTES = [
    ("post", "/v1/deliveries?record_type=child"),
    ("post", "/v1/deliveries/batch?record_type=child"),
    ("get", "/v1/deliveries"),
    ("get", "/v1/deliveries/some-id"),
]


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_every_route_refuses_a_request_without_a_valid_token(
    client: TestClient, method: str, url: str
) -> None:
    anonymous = client.request(method, url, content=b"[]", headers=NDJSON)
    forged = client.request(
        method,
        url,
        content=b"[]",
        headers={
            **NDJSON,
            **bearer(DevIssuer.generate(issuer="https://dev.fjo.invalid")),
        },
    )

    for response in (anonymous, forged):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_a_token_without_the_partner_role_or_source_is_forbidden(
    client: TestClient, issuer: DevIssuer, method: str, url: str
) -> None:
    researcher = bearer(issuer, roles=["researcher"])
    no_source = bearer(issuer, source=None)
    unknown_source = bearer(issuer, source="nobody-agency")

    for headers in (researcher, no_source, unknown_source):
        response = client.request(method, url, content=b"[]", headers={**NDJSON, **headers})
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"


def test_a_partner_cannot_push_a_delivery_as_another_agency(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    response = client.post(
        "/v1/deliveries",
        params={"record_type": "child", "source": "cafcass-england"},
        content=ndjson_delivery(3).body,
        headers={**NDJSON, **bearer(issuer, "cafcass-cymru")},
    )

    assert response.status_code == 403
    assert response.json()["type"].endswith("/source-mismatch")
    assert bus.log.messages == []


def test_a_record_claiming_another_agency_is_rejected_and_quarantined_not_relabelled(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    lines = [child(1), child(2, source="cafcass-england"), child(3, source="wds"), child(4)]
    del lines[3]["source"]  # no source: the caller's own
    body = "".join(json.dumps(r) + "\n" for r in lines).encode()

    receipt = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={**NDJSON, **bearer(issuer, "cafcass-cymru")},
    ).json()

    assert (receipt["accepted"], receipt["rejected"]) == (2, 2)
    assert [(e["line"], e["path"], e["type"]) for e in receipt["errors"]] == [
        (2, "source", "source_mismatch"),
        (3, "source", "source_mismatch"),
    ]
    published = [
        json.loads(m.value)["data"]["record"]["source"]
        for m in bus.log.messages
        if m.topic == "ingest.records.v1"
    ]
    assert published == ["cafcass-cymru", "cafcass-cymru"]


def test_the_spine_owner_cannot_send_cafcass_record_types(
    client: TestClient, issuer: DevIssuer
) -> None:
    response = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=b"{}\n",
        headers={**NDJSON, **bearer(issuer, "wds")},
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/record-type-not-allowed")


def test_another_partners_receipt_is_indistinguishable_from_a_missing_one(
    client: TestClient, issuer: DevIssuer
) -> None:
    cymru = bearer(issuer, "cafcass-cymru")
    england = bearer(issuer, "cafcass-england")
    receipt = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=ndjson_delivery(3).body,
        headers={**NDJSON, **cymru},
    ).json()

    own = client.get(f"/v1/deliveries/{receipt['delivery_id']}", headers=cymru)
    theirs = client.get(f"/v1/deliveries/{receipt['delivery_id']}", headers=england)
    missing = client.get("/v1/deliveries/00000000-0000-0000-0000-000000000000", headers=england)

    assert own.status_code == 200
    assert own.json() == receipt
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert client.get("/v1/deliveries", headers=england).json()["items"] == []


def test_an_idempotency_key_is_scoped_to_the_partner(client: TestClient, issuer: DevIssuer) -> None:
    key = {"Idempotency-Key": "same-key"}
    first = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=ndjson_delivery(2).body,
        headers={**NDJSON, **bearer(issuer, "cafcass-cymru"), **key},
    )
    other = client.post(
        "/v1/deliveries",
        params={"record_type": "child"},
        content=ndjson_delivery(2, source="cafcass-england", start=50).body,
        headers={**NDJSON, **bearer(issuer, "cafcass-england"), **key},
    )

    assert first.status_code == other.status_code == 201
    assert first.json()["delivery_id"] != other.json()["delivery_id"]
