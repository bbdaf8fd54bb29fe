"""Fuzz ingest's HTTP API from its own OpenAPI document (schemathesis, in-process ASGI).

Every operation is called with generated (valid and invalid) parameters and bodies under a
valid partner token for a drawn agency: no answer may be a server error, every error is a
problem document, and statuses, media types, headers and bodies match what the document
says. The same request without a token, or with a forged one, must answer 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi

from contracts.records import RECORD_MODELS, RecordType, SourceAgency
from services.ingest.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.fuzz._support import (
    CHECKS,
    assert_unauthenticated_refused,
    fuzz_settings,
    needs_a_token,
    openapi_schema,
)
from tests.unit.ingest.support import AUDIENCE, ISSUER, FakeBus, settings_for

ISSUER_KEY = DevIssuer.generate(issuer=ISSUER)
FORGER = DevIssuer.generate(issuer=ISSUER)  # the same issuer's name, another key


def build_app(tmp: Path) -> FastAPI:
    # Limits generous enough that the fuzzer reaches parsing and validation rather than the
    # rate limiter; the limits themselves are covered by the unit tests.
    settings = settings_for(tmp, rate_per_s=1e6, rate_burst=1_000_000)
    return create_app(settings, bus=FakeBus(), verifier=ISSUER_KEY.verifier(audience=AUDIENCE))


# Building the app opens nothing (its lifespan does), so the document is read at collection.
schema = openapi_schema(build_app(Path("/nonexistent/fjo-fuzz")))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One ingest on SQLite and an in-memory bus for the module; schemathesis runs its
    lifespan on the first request, and it is shut down here."""
    the_app = build_app(tmp_path_factory.mktemp("ingest-fuzz"))
    assert the_app.openapi() == schema.raw_schema
    try:
        yield the_app
    finally:
        asgi.shutdown_lifespans()


def partner_for(case: schemathesis.Case) -> SourceAgency:
    """The agency whose token the request carries: the one it names as ``?source=``, else one
    that may send the record type it names (so that most requests get past authorisation)."""
    query = case.query or {}
    named = {s.value: s for s in SourceAgency}
    if isinstance(query.get("source"), str) and query["source"] in named:
        return named[query["source"]]
    kind = query.get("record_type") or (case.headers or {}).get("Fjo-Record-Type")
    types = {t.value: t for t in RecordType}
    if isinstance(kind, str) and kind in types:
        return min(RECORD_MODELS[types[kind]].allowed_sources)
    return SourceAgency.CAFCASS_CYMRU


@schema.parametrize()
@fuzz_settings(max_examples=40)
def test_ingest_answers_every_generated_request_as_its_openapi_document_says(
    case: schemathesis.Case, app: FastAPI
) -> None:
    source = partner_for(case)
    token = ISSUER_KEY.mint("push", audience=AUDIENCE, roles=["partner"], source=source)
    response = case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
    )
    if needs_a_token(case, response):
        assert_unauthenticated_refused(case, app, None)
        forged = FORGER.mint("intruder", audience=AUDIENCE, roles=["partner"], source=source)
        assert_unauthenticated_refused(case, app, forged)
