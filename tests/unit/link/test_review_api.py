"""The clerical-review API: only a reviewer may list or decide; a decision records the reviewer
the token names, is audited in ``link_audit`` and publishes the record's new result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from contracts.events import LinkReason, LinkStatus
from services.link import storage
from services.link.config import LinkSettings
from services.link.entrypoints import create_app
from services.runtime.auth import DevIssuer
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.db import make_engine
from services.runtime.pagination import INVALID_CURSOR
from services.runtime.problems import problem_type
from tests.unit.link.review_support import (
    AUDIENCE,
    ISSUER,
    REVIEWER_ROLE,
    audit_rows,
    published_results,
    queue_a_review,
    results_bus,
    settings_for,
)


@pytest.fixture
def issuer() -> DevIssuer:
    return DevIssuer.generate(issuer=ISSUER)


@pytest.fixture
def settings(tmp_path: Path) -> LinkSettings:
    return settings_for(tmp_path)


@pytest.fixture
def queued(settings: LinkSettings) -> str:
    """The token of the one record waiting for review."""
    return queue_a_review(settings)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[EmbeddedBus]:
    the_bus = results_bus(tmp_path)
    yield the_bus
    the_bus.close()


@pytest.fixture
def client(
    settings: LinkSettings, issuer: DevIssuer, bus: EmbeddedBus, queued: str
) -> Iterator[TestClient]:
    app = create_app(settings, verifier=issuer.verifier(audience=AUDIENCE), bus=bus)
    with TestClient(app) as client:
        yield client


def bearer(issuer: DevIssuer, subject: str, *roles: str, audience: str = AUDIENCE) -> dict:
    return {"Authorization": f"Bearer {issuer.mint(subject, audience=audience, roles=roles)}"}


def assert_problem(r, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status


def test_the_document_says_every_review_route_needs_a_token_and_takes_no_caller_parameter(
    settings: LinkSettings,
) -> None:
    doc = create_app(settings).openapi()  # building the document opens nothing
    review = {path: ops for path, ops in doc["paths"].items() if path.startswith("/v1/review")}
    assert set(review) == {"/v1/review", "/v1/review/{record_token}"}
    for operations in review.values():
        for operation in operations.values():
            assert operation["security"] == [{"HTTPBearer": []}]
            assert {"401", "403"} <= set(operation["responses"])
            names = {p["name"] for p in operation.get("parameters", [])}
            assert names <= {"limit", "cursor", "record_token"}, names
    decide = review["/v1/review/{record_token}"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Decision"
    }


def test_a_reviewer_lists_the_open_reviews(
    client: TestClient, issuer: DevIssuer, queued: str
) -> None:
    r = client.get("/v1/review", headers=bearer(issuer, "rita", REVIEWER_ROLE))
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert r.json()["next_cursor"] is None
    assert item["record_token"] == queued
    assert set(item) == {
        "record_token",
        "candidate_token",
        "match_probability",
        "model_version",
        "evidence",
    }
    # The evidence: per comparison the level that held and its weight, no identifier.
    assert {"comparison", "level", "weight"} == set(item["evidence"]["comparisons"][0])


def test_a_limit_outside_one_to_two_hundred_is_422(client: TestClient, issuer: DevIssuer) -> None:
    for limit in (0, 201):
        r = client.get(f"/v1/review?limit={limit}", headers=bearer(issuer, "rita", REVIEWER_ROLE))
        assert_problem(r, 422)


def test_without_a_valid_token_listing_and_deciding_are_401(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus, queued: str, settings: LinkSettings
) -> None:
    forged = bearer(DevIssuer.generate(issuer=ISSUER), "eve", REVIEWER_ROLE)
    other_audience = bearer(issuer, "eve", REVIEWER_ROLE, audience="fjo-access")
    for credentials in ({}, forged, other_audience, {"Authorization": "Basic cml0YTpyaXRh"}):
        r = client.get("/v1/review", headers=credentials)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = client.post(f"/v1/review/{queued}", json={"accept": True}, headers=credentials)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert published_results(bus) == []
    assert [action for action, *_ in audit_rows(settings)] == []


def test_a_token_without_the_reviewer_role_may_neither_list_nor_decide(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus, queued: str, settings: LinkSettings
) -> None:
    for roles in ((), ("researcher", "admin")):
        r = client.get("/v1/review", headers=bearer(issuer, "mallory", *roles))
        assert_problem(r, 403)
        r = client.post(
            f"/v1/review/{queued}", json={"accept": True}, headers=bearer(issuer, "mallory", *roles)
        )
        assert_problem(r, 403)
    assert published_results(bus) == []
    assert audit_rows(settings) == []
    listed = client.get("/v1/review", headers=bearer(issuer, "rita", REVIEWER_ROLE))
    assert [item["record_token"] for item in listed.json()["items"]] == [queued]


def test_accepting_records_the_reviewer_the_token_names_audits_and_publishes_the_link(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus, queued: str, settings: LinkSettings
) -> None:
    # A reviewer named in the query (how the broken API took its caller) is not listened to.
    r = client.post(
        f"/v1/review/{queued}?who=mallory&_who=mallory&reviewer=mallory",
        json={"accept": True},
        headers=bearer(issuer, "rita", REVIEWER_ROLE),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "record_token": queued,
        "accepted": True,
        "decided_by": "rita",
        "published": 1,
    }
    [result] = published_results(bus)
    assert result.record_token == queued
    assert result.status is LinkStatus.CLERICAL_ACCEPTED and result.alf is not None
    assert result.reason is LinkReason.CLERICAL_DECISION
    decisions = [(a, t, json.loads(d)) for a, t, d in audit_rows(settings) if a.startswith("rev")]
    assert [(a, t, d["reviewer"]) for a, t, d in decisions] == [("review-accepted", queued, "rita")]
    listed = client.get("/v1/review", headers=bearer(issuer, "rita", REVIEWER_ROLE))
    assert listed.json() == {"items": [], "next_cursor": None}


def test_rejecting_reverses_an_acceptance_under_the_second_reviewers_name(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus, queued: str, settings: LinkSettings
) -> None:
    accepted = client.post(
        f"/v1/review/{queued}", json={"accept": True}, headers=bearer(issuer, "rita", REVIEWER_ROLE)
    )
    rejected = client.post(
        f"/v1/review/{queued}",
        json={"accept": False},
        headers=bearer(issuer, "rhys", REVIEWER_ROLE),
    )
    assert accepted.status_code == rejected.status_code == 200, rejected.text
    assert rejected.json()["decided_by"] == "rhys" and rejected.json()["accepted"] is False
    first, second = published_results(bus)
    assert second.status is LinkStatus.UNLINKED and second.alf is None
    assert second.supersedes_sequence == first.sequence
    reviewers = [
        (action, json.loads(detail)["reviewer"])
        for action, _, detail in audit_rows(settings)
        if action.startswith("review-")
    ]
    assert reviewers == [("review-accepted", "rita"), ("review-rejected", "rhys")]


def test_a_decision_on_a_record_not_in_the_queue_is_404(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus
) -> None:
    r = client.post(
        "/v1/review/bm90LWluLXRoZS1xdWV1ZS0xMjM0NTY",
        json={"accept": True},
        headers=bearer(issuer, "rita", REVIEWER_ROLE),
    )
    assert_problem(r, 404)
    assert published_results(bus) == []


@pytest.mark.parametrize(
    "body",
    [{"accept": "yes"}, {"accept": 1}, {}, {"accept": True, "reviewer": "mallory"}],
    ids=["string", "number", "missing", "extra-field"],
)
def test_a_decision_that_is_not_exactly_a_boolean_is_422(
    client: TestClient, issuer: DevIssuer, bus: EmbeddedBus, queued: str, body: dict
) -> None:
    r = client.post(
        f"/v1/review/{queued}", json=body, headers=bearer(issuer, "rita", REVIEWER_ROLE)
    )
    assert_problem(r, 422)
    assert published_results(bus) == []


def test_in_production_without_a_jwks_the_api_refuses_to_start(tmp_path: Path) -> None:
    settings = LinkSettings(
        environment="prod",
        database_url=f"sqlite+pysqlite:///{tmp_path / 'link.db'}",
        alf_key_file=tmp_path / "alf.key",
    )
    bus = results_bus(tmp_path)
    try:
        with (
            pytest.raises(RuntimeError, match="no JWKS URL"),
            TestClient(create_app(settings, bus=bus)),
        ):
            pass
    finally:
        bus.close()


def test_in_dev_a_token_from_the_dev_issuers_key_file_is_accepted_and_start_leaves_it_alone(
    settings: LinkSettings, bus: EmbeddedBus, queued: str, tmp_path: Path
) -> None:
    # `fjo up` starts every API at once: only one of them may create the key file at start.
    key_file = tmp_path / "dev-issuer.pem"
    dev = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"dev_key_file": key_file})}
    )
    with TestClient(create_app(dev, bus=bus)) as client:
        assert not key_file.exists()
        issuer = DevIssuer.from_file(key_file, issuer=ISSUER)  # what `fjo token` does
        r = client.get("/v1/review", headers=bearer(issuer, "rita", REVIEWER_ROLE))
        assert r.status_code == 200, r.text
        assert [item["record_token"] for item in r.json()["items"]] == [queued]


def _queue_more(settings: LinkSettings, open_items: int, decided: int) -> None:
    """Open and decided items beside the one queued, some queued at the same instant."""
    engine = make_engine(settings.database_url)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            for i in range(open_items + decided):
                conn.execute(
                    insert(storage.review_queue).values(
                        record_token=f"tok{i:03d}" + "x" * 40,
                        candidate_token="c" * 43,
                        match_probability=0.5,
                        state="open" if i < open_items else "accepted",
                        model_version="fs-1",
                        created_at=at + timedelta(seconds=i // 3),  # three per instant
                    )
                )
    finally:
        engine.dispose()


def test_paging_the_queue_gives_every_open_item_once_in_queued_order(
    client: TestClient, issuer: DevIssuer, settings: LinkSettings, queued: str
) -> None:
    _queue_more(settings, open_items=8, decided=3)
    everything = client.get("/v1/review?limit=200", headers=bearer(issuer, "rita", REVIEWER_ROLE))
    whole = [item["record_token"] for item in everything.json()["items"]]
    assert len(whole) == 9 and queued in whole and everything.json()["next_cursor"] is None
    paged, cursor, pages = [], None, 0
    while True:
        url = "/v1/review?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=bearer(issuer, "rita", REVIEWER_ROLE)).json()
        assert len(page["items"]) <= 2
        paged += [item["record_token"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole and pages == 5


@pytest.mark.parametrize("cursor", ["!!", "bm90IGEgY3Vyc29y", "MjAyNnx4fHk", "AA", "eHwA", "eHx5"])
def test_a_garbled_or_forged_cursor_is_422_invalid_cursor(
    client: TestClient, issuer: DevIssuer, cursor: str
) -> None:
    r = client.get(f"/v1/review?cursor={cursor}", headers=bearer(issuer, "rita", REVIEWER_ROLE))
    assert_problem(r, 422)
    assert r.json()["type"] == problem_type(INVALID_CURSOR)


def test_every_refusal_names_its_kind_in_the_one_problem_type_scheme(
    client: TestClient, issuer: DevIssuer, queued: str
) -> None:
    r = client.get("/v1/review", headers=bearer(issuer, "mallory", "researcher"))
    assert r.json()["type"] == problem_type("not-a-reviewer")
    r = client.post(
        "/v1/review/bm90LWluLXRoZS1xdWV1ZS0xMjM0NTY",
        json={"accept": True},
        headers=bearer(issuer, "rita", REVIEWER_ROLE),
    )
    assert r.json()["type"] == problem_type("review-not-found")
    assert client.get("/v1/review").json()["type"] == problem_type("unauthenticated")
    assert client.get("/review").json()["type"] == problem_type("not-found")  # moved to /v1
