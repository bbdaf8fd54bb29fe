"""POST /v1/objections: authenticated, authorised per source and record, idempotent, 4xx on
bad input, and published under the key of the record it is about."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import FakeBus, bearer

RECORDS = "ingest.records.v1"


def request(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": "obj-0001",
        "kind": "objection",
        "subject": "record",
        "source": "cafcass-cymru",
        "record_type": "child",
        "record_id": "CH-00000001",
        "reason": "data-subject-request",
    }
    body.update(over)
    return body


def spine_request(**over: Any) -> dict[str, Any]:
    return request(
        source="wds", record_type="spine-person", record_id="SP-0001", subject="person", **over
    )


def test_a_partner_gets_a_receipt_and_the_request_goes_out_under_the_records_key(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    response = client.post("/v1/objections", json=request(), headers=bearer(issuer))

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["request_id"] == "obj-0001"
    assert receipt["received_at"]
    assert response.headers["Location"] == f"/v1/objections/{receipt['receipt_id']}"
    [message] = bus.log.on(RECORDS)
    assert message.key == b"cafcass-cymru/child/CH-00000001"
    envelope = json.loads(message.value)
    assert envelope["type"] == "ingest.objection-received.v1"
    assert envelope["data"]["receipt_id"] == receipt["receipt_id"]
    assert envelope["data"]["request"]["record_id"] == "CH-00000001"

    again = client.get(f"/v1/objections/{receipt['receipt_id']}", headers=bearer(issuer))
    assert again.status_code == 200
    assert again.json() == receipt


def test_the_same_request_id_again_returns_the_first_receipt_and_publishes_nothing(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    first = client.post("/v1/objections", json=request(), headers=bearer(issuer))
    second = client.post("/v1/objections", json=request(), headers=bearer(issuer))

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(bus.log.on(RECORDS)) == 1


def test_a_request_id_reused_for_another_request_is_a_422(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    client.post("/v1/objections", json=request(), headers=bearer(issuer))
    other = client.post(
        "/v1/objections", json=request(record_id="CH-00000002"), headers=bearer(issuer)
    )

    assert other.status_code == 422
    assert other.json()["type"].endswith("/request-id-reused")
    assert len(bus.log.on(RECORDS)) == 1


def test_the_same_request_id_of_two_partners_are_two_requests(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    cymru = client.post("/v1/objections", json=request(), headers=bearer(issuer))
    england = client.post(
        "/v1/objections",
        json=request(source="cafcass-england"),
        headers=bearer(issuer, source="cafcass-england"),
    )

    assert (cymru.status_code, england.status_code) == (201, 201)
    assert cymru.json()["receipt_id"] != england.json()["receipt_id"]
    assert len(bus.log.on(RECORDS)) == 2


def test_a_partner_may_object_only_for_its_own_records(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    others = client.post(
        "/v1/objections", json=request(source="cafcass-england"), headers=bearer(issuer)
    )
    spine = client.post("/v1/objections", json=spine_request(), headers=bearer(issuer))

    assert others.status_code == 403
    assert others.json()["type"].endswith("/source-mismatch")
    assert spine.status_code == 403
    assert bus.log.on(RECORDS) == []


def test_only_the_spines_owner_objects_for_a_person_and_only_for_a_spine_person(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    wds = bearer(issuer, source="wds")
    person = client.post("/v1/objections", json=spine_request(), headers=wds)
    opt_out = client.post(
        "/v1/objections",
        json=spine_request(request_id="opt-1", kind="opt-out", reason="national-opt-out"),
        headers=wds,
    )
    child_as_person = client.post(
        "/v1/objections", json=request(subject="person"), headers=bearer(issuer)
    )
    record_opt_out = client.post(
        "/v1/objections", json=request(kind="opt-out"), headers=bearer(issuer)
    )

    assert (person.status_code, opt_out.status_code) == (201, 201)
    assert child_as_person.status_code == 422
    assert record_opt_out.status_code == 422
    assert [m.key for m in bus.log.on(RECORDS)] == [b"wds/spine-person/SP-0001"] * 2


def test_a_receipt_is_readable_only_by_its_own_partner(
    client: TestClient, issuer: DevIssuer
) -> None:
    receipt = client.post("/v1/objections", json=request(), headers=bearer(issuer)).json()

    other = client.get(
        f"/v1/objections/{receipt['receipt_id']}", headers=bearer(issuer, source="cafcass-england")
    )
    missing = client.get(
        "/v1/objections/00000000-0000-0000-0000-000000000000", headers=bearer(issuer)
    )
    not_an_id = client.get("/v1/objections/not-a-uuid", headers=bearer(issuer))

    assert other.status_code == 404
    assert missing.status_code == 404
    assert not_an_id.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        request(kind="forget-me"),
        request(reason="because my name is Canarywyn"),
        request(record_id=""),
        request(request_id="has spaces"),
        request(extra_free_text="Canarywyn"),
        {"kind": "objection"},
        [request()],
        "not json",
    ],
    ids=[
        "kind",
        "free-text-reason",
        "empty-id",
        "bad-request-id",
        "unknown-field",
        "missing",
        "array",
        "text",
    ],
)
def test_a_bad_request_is_a_422_problem_never_a_500(
    client: TestClient, issuer: DevIssuer, bus: FakeBus, body: Any
) -> None:
    if isinstance(body, str):
        response = client.post(
            "/v1/objections",
            content=body,
            headers={**bearer(issuer), "Content-Type": "application/json"},
        )
    else:
        response = client.post("/v1/objections", json=body, headers=bearer(issuer))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Canarywyn" not in response.text
    assert bus.log.on(RECORDS) == []


def test_every_objection_route_needs_a_partner_token(client: TestClient, issuer: DevIssuer) -> None:
    anonymous = client.post("/v1/objections", json=request())
    researcher = client.post(
        "/v1/objections", json=request(), headers=bearer(issuer, roles=["researcher"])
    )
    read = client.get("/v1/objections/00000000-0000-0000-0000-000000000000")
    summary_as_partner = client.get("/v1/objections/summary", headers=bearer(issuer))

    assert anonymous.status_code == 401
    assert researcher.status_code == 403
    assert read.status_code == 401
    assert summary_as_partner.status_code == 403


def test_a_bus_failure_is_a_503_and_sending_again_then_succeeds(
    client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    bus.log.fail_next_flushes = 1
    failed = client.post("/v1/objections", json=request(), headers=bearer(issuer))
    retried = client.post("/v1/objections", json=request(), headers=bearer(issuer))

    assert failed.status_code == 503
    assert failed.json()["type"].endswith("/objection-failed")
    assert retried.status_code == 201
    # The refused attempt may still reach the bus (its producer's buffer is retried): then it
    # is the same event, which downstream applies and counts once.
    sent = [json.loads(m.value) for m in bus.log.on(RECORDS)]
    assert {e["event_id"] for e in sent} == {sent[-1]["event_id"]}
    assert {e["data"]["receipt_id"] for e in sent} == {retried.json()["receipt_id"]}


def test_operators_read_how_many_came_by_kind(client: TestClient, issuer: DevIssuer) -> None:
    client.post("/v1/objections", json=request(), headers=bearer(issuer))
    client.post(
        "/v1/objections", json=request(request_id="obj-2", record_id="CH-2"), headers=bearer(issuer)
    )
    client.post("/v1/objections", json=spine_request(), headers=bearer(issuer, source="wds"))

    summary = client.get(
        "/v1/objections/summary", headers=bearer(issuer, source=None, roles=["operator"])
    )

    assert summary.status_code == 200, summary.text
    assert summary.json() == {
        "received": 3,
        "by_kind": [
            {"kind": "objection", "subject": "person", "received": 1},
            {"kind": "objection", "subject": "record", "received": 2},
        ],
    }


def test_fjo_objections_send_posts_a_list_and_is_safe_to_run_again(
    client: TestClient, issuer: DevIssuer, bus: FakeBus, tmp_path
) -> None:
    from fjo.objections_cli import read_requests, send_objections

    listing = tmp_path / "opt-outs.ndjson"
    lines = [
        spine_request(request_id=f"opt-{i}", kind="opt-out", reason="national-opt-out")
        for i in range(3)
    ]
    listing.write_text(
        "\n".join(json.dumps(line) for line in lines)
        + "\nnot json\n\n"
        + json.dumps(spine_request(request_id="bad", kind="forget-me"))
        + "\n"
    )
    minted = issuer.mint("wds-push", audience="fjo-ingest", roles=["partner"], source="wds")

    first = send_objections(read_requests(listing), url="", token=minted, client=client)
    again = send_objections(read_requests(listing), url="", token=minted, client=client)

    assert (first["sent"], first["received"], first["repeated"]) == (5, 3, 0)
    assert [r["request"] for r in first["refused"]] == [4, 5]
    assert first["refused"][1]["reason"].startswith("422")
    assert (again["received"], again["repeated"]) == (0, 3)
    assert len(bus.log.on(RECORDS)) == 3
