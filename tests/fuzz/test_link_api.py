"""Fuzz link's clerical-review API from its own OpenAPI document (schemathesis, in-process ASGI).

Each operation is fuzzed with a reviewer's token and with a token lacking the reviewer role,
against a link database with one record waiting for review; every generated request is sent
again with that record's token in its path, so that it reaches the decision itself. No answer
may be a server error, every error is a problem document, statuses, media types, headers and
bodies match the document, and the same request without a token, or with a forged one, is 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi

from services.link.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.fuzz._support import (
    CHECKS,
    assert_unauthenticated_refused,
    fuzz_settings,
    needs_a_token,
    openapi_schema,
)
from tests.unit.link.review_support import (
    AUDIENCE,
    ISSUER,
    REVIEWER_ROLE,
    queue_a_review,
    results_bus,
    settings_for,
)

ISSUER_KEY = DevIssuer.generate(issuer=ISSUER)
FORGER = DevIssuer.generate(issuer=ISSUER)  # the same issuer's name, another key

ROLES = {"reviewer": ("rita", REVIEWER_ROLE), "researcher": ("alice", "researcher")}

# Building the app opens nothing (its lifespan does), so the document is read at collection.
schema = openapi_schema(create_app(settings_for(Path("/nonexistent/fjo-fuzz"))))

QUEUED: list[str] = []
"""The token of the record waiting for review, set by ``app``."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One link on SQLite and an embedded bus for the module, one record queued for review;
    schemathesis runs the app's lifespan on the first request, and it is shut down here.
    (Decisions may flip the record back and forth: deciding again is allowed.)"""
    tmp = tmp_path_factory.mktemp("link-fuzz")
    settings = settings_for(tmp)
    QUEUED[:] = [queue_a_review(settings)]
    bus = results_bus(tmp)
    the_app = create_app(settings, verifier=ISSUER_KEY.verifier(audience=AUDIENCE), bus=bus)
    assert the_app.openapi() == schema.raw_schema  # the document fuzzed is the app's own
    try:
        yield the_app
    finally:
        asgi.shutdown_lifespans()
        bus.close()


@pytest.fixture(scope="module", params=sorted(ROLES))
def role(request: pytest.FixtureRequest) -> tuple[str, str]:
    return ROLES[request.param]


@schema.parametrize()
@fuzz_settings(max_examples=25)
def test_link_answers_every_generated_request_as_its_openapi_document_says(
    case: schemathesis.Case, app: FastAPI, role: tuple[str, str]
) -> None:
    authorization = {
        "Authorization": f"Bearer {ISSUER_KEY.mint(role[0], audience=AUDIENCE, roles=[role[1]])}"
    }
    response = case.call_and_validate(app=app, headers=authorization, checks=CHECKS)
    if needs_a_token(case, response):
        assert_unauthenticated_refused(case, app, None)
        forged = FORGER.mint(role[0], audience=AUDIENCE, roles=[role[1]])
        assert_unauthenticated_refused(case, app, forged)
    if response.status_code in (400, 422) or "record_token" not in (case.path_parameters or {}):
        return  # refused before the queue is looked at, or no record named
    # The same query and body for the queued record (a failure shows the token it used).
    case.path_parameters = {**case.path_parameters, "record_token": QUEUED[0]}
    case.call_and_validate(app=app, headers=authorization, checks=CHECKS)
