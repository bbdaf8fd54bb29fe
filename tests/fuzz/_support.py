"""What both fuzz suites share: the hypothesis budget, the checks, the unauthenticated probe.

The fuzz tests run schemathesis in-process (ASGI) against each app's own OpenAPI document.
They must be reproducible in CI (a flaky fuzz test is worse than none): examples are
derandomised and nothing is kept between runs.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

PROBLEM_JSON = "application/problem+json"

# Ingest streams NDJSON (and CSV, which schemathesis sends as text): bodies go out as bytes.
schemathesis.serializer.alias(["application/x-ndjson"], "application/octet-stream")


CONFIG = schemathesis.Config.from_dict(
    # Explicit, so that no stray schemathesis.toml changes a CI run. Unknown query parameters
    # and headers are ignored by design (HTTP norm, FastAPI's behaviour), not refused, so
    # requests carrying them are not "negative" data that must be rejected.
    {"generation": {"allow-extra-parameters": False}}
)


def openapi_schema(app: FastAPI) -> schemathesis.BaseSchema:
    """The app's own OpenAPI document as a schemathesis schema (no requests, no I/O).

    Loaded at collection so that every operation is its own pytest test; the requests go to
    the app a fixture starts (``case.call(app=...)``), which must serve the same document.
    (``schemathesis.pytest.from_fixture`` would load it lazily, but renames pytest's node ids
    through an attribute pytest 9.2 no longer has.)
    """
    return schemathesis.openapi.from_dict(app.openapi(), config=CONFIG)


def fuzz_settings(max_examples: int) -> settings:
    """Small, fixed budgets: derandomised, no example database, no deadline (CI machines are
    slow and shared); only the health checks about slowness are off."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow],
    )


def problem_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx/5xx answer is an RFC 9457 problem document whose status is the HTTP one."""
    if response.status_code < 400:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    assert media == PROBLEM_JSON, (
        f"{response.status_code} answered with Content-Type {media!r}, not {PROBLEM_JSON}"
    )
    try:
        body: Any = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} problem body is not JSON: {exc}") from None
    assert isinstance(body, dict), f"problem body is {type(body).__name__}, not an object"
    missing = [k for k in ("type", "title", "status") if k not in body]
    assert not missing, f"problem document lacks {missing}: {body}"
    assert isinstance(body["type"], str) and body["type"], f"problem type: {body['type']!r}"
    assert isinstance(body["title"], str) and body["title"], f"problem title: {body['title']!r}"
    assert body["status"] == response.status_code, (
        f"problem status {body['status']!r} != HTTP status {response.status_code}"
    )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_json,
]
"""Run on every response: no 5xx, only documented statuses, media types, headers and bodies,
invalid input refused, every error a problem document."""


def needs_a_token(case: Case, authenticated: Response) -> bool:
    """Whether the same request without a valid token must answer 401: every operation
    behind a token, whatever its body (routes authenticate before reading it), unless the case
    probes another method on the path (405 comes first)."""
    del authenticated
    if not case.operation.definition.raw.get("security"):
        return False
    return case.method.upper() == case.operation.method.upper()


def assert_unauthenticated_refused(case: Case, app: FastAPI, token: str | None) -> None:
    """The same request without a token, or with ``token`` (a bad one), answers 401."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = case.call(app=app, headers=headers)
    assert response.status_code == 401, (
        f"{case.operation.label} without a valid token: {response.status_code} "
        f"{response.text[:300]}"
    )
    challenge = response.headers.get("www-authenticate") or [""]
    assert challenge[0].startswith("Bearer"), f"401 without a Bearer challenge: {challenge}"
    case.validate_response(
        response, checks=[problem_json, status_code_conformance], transport_kwargs={"app": app}
    )


__all__ = [
    "CHECKS",
    "assert_unauthenticated_refused",
    "fuzz_settings",
    "needs_a_token",
    "openapi_schema",
    "problem_json",
    "schemathesis",
]
