"""Fuzz access's HTTP API from its own OpenAPI document (schemathesis, in-process ASGI).

Each operation is fuzzed once per role (researcher, approver, output checker, admin) with
that role's valid token, against a copy of one seeded world: accredited researchers, an
active project with a research store, a built extract, a submitted and a released output, a
draft and a submitted project. Every generated request is also sent with the seeded
objects' ids in its path, so that it gets past "not found" into the handlers. No answer may be a
server error, every error is a problem document, statuses, media types, headers and bodies
match the document, and the same request without a token, or with a forged one, is 401.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.python import asgi

from services.access.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.fuzz._support import (
    CHECKS,
    assert_unauthenticated_refused,
    fuzz_settings,
    needs_a_token,
    openapi_schema,
)
from tests.integration.access.conftest import (
    AUDIENCE,
    CHECKER_1,
    CHECKER_2,
    Access,
    active_project,
    family_court_data,
    note_job,
    note_output,
    register,
    settings_for,
)

ISSUER_KEY = DevIssuer.generate(issuer="https://dev.fjo.invalid")
FORGER = DevIssuer.generate(issuer="https://dev.fjo.invalid")  # same issuer name, other key

ROLES = {
    "researcher": ("alice", "researcher"),
    "approver": ("carol", "approver"),
    "output-checker": ("dave", "output-checker"),
    "admin": ("root", "admin"),
}


def build_app(db: Path, work: Path) -> FastAPI:
    settings = settings_for(f"sqlite+pysqlite:///{db}", work)
    return create_app(settings, verifier=ISSUER_KEY.verifier(audience=AUDIENCE))


def token(subject: str, role: str) -> str:
    return ISSUER_KEY.mint(subject, audience=AUDIENCE, roles=[role])


# Building the app with migrations off opens no database: the document is read at collection.
_doc_settings = settings_for("sqlite://", Path("/nonexistent/fjo-fuzz"))
schema = openapi_schema(
    create_app(
        _doc_settings.model_copy(update={"migrate_on_start": False}),
        verifier=ISSUER_KEY.verifier(audience=AUDIENCE),
    )
)

SEEDED: list[dict[str, str]] = []
"""Path parameters naming the seeded objects (one dict per family), set by ``world``."""


def seeded_variants(path_parameters: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The generated path parameters with each seeded family's ids in their place: generated
    ids name nothing, seeded ones reach the handlers' logic (deterministic, so a failure
    reproduces with its case)."""
    variants: list[dict[str, Any]] = []
    for seeded in SEEDED if path_parameters else ():
        variant = {name: seeded.get(name, value) for name, value in path_parameters.items()}
        if variant != path_parameters and variant not in variants:
            variants.append(variant)
    return variants


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded access database (and its built extract), copied afresh for each test."""
    root = tmp_path_factory.mktemp("access-world")
    db = root / "access.db"
    app = build_app(db, root)
    with TestClient(app) as client:
        a = Access(client=client, issuer=ISSUER_KEY, ctx=app.state.access)
        a.seed(*family_court_data())
        register(a, "alice", "bob", "erin")
        pid = active_project(a)
        alice = a.h("alice", "researcher")
        r = client.post(f"/v1/projects/{pid}/extracts", headers=alice)
        assert r.status_code == 202, r.text
        eid = r.json()["id"]
        files = client.get(f"/v1/projects/{pid}/extracts/{eid}", headers=alice).json()["files"]
        job = note_job(a, pid, who="alice")
        outputs = [
            note_output(a, pid, job, who="alice"),
            note_output(a, pid, job, CHECKER_1, CHECKER_2, who="alice"),
        ]
        draft = client.post(
            "/v1/projects", json={"title": "A draft", "datasets": ["child"]}, headers=alice
        ).json()["id"]
        r = client.post(f"/v1/projects/{draft}/members", json={"subject": "bob"}, headers=alice)
        assert r.status_code == 201, r.text
        submitted = client.post(
            "/v1/projects", json={"title": "Submitted", "variables": ["WOB"]}, headers=alice
        ).json()["id"]
        r = client.post(f"/v1/projects/{submitted}/submit", headers=alice)
        assert r.status_code == 200, r.text
    SEEDED[:] = [
        {
            "project_id": pid,
            "extract_id": eid,
            "output_id": outputs[0],
            "name": "manifest.json",
            "subject": "alice",
        },
        {"project_id": pid, "output_id": outputs[1], "name": files[0]["name"], "subject": "bob"},
        {"project_id": pid, "output_id": outputs[1], "name": "note.txt", "job_id": job},
        {"project_id": draft, "subject": "bob"},
        {"project_id": submitted, "subject": "erin"},
    ]
    return db


@pytest.fixture(scope="module", params=sorted(ROLES))
def role(request: pytest.FixtureRequest) -> tuple[str, str]:
    return ROLES[request.param]


APP: dict[str, FastAPI] = {}


@pytest.fixture(autouse=True)
def fresh_copy_of_the_world(world: Path, tmp_path: Path) -> Iterator[None]:
    """Each operation and role starts from the seeded world, so that what one fuzzes (closing
    the project, releasing the output) cannot change what another reaches; examples within
    one test share the copy. (Autouse: hypothesis rightly refuses function-scoped fixtures as
    arguments, since they are not reset between examples.)"""
    db = tmp_path / "access.db"
    shutil.copyfile(world, db)
    # The workspaces too: the airlock finds an output's files under this app's directory.
    shutil.copytree(world.parent / "extracts", tmp_path / "extracts", symlinks=True)
    APP["app"] = build_app(db, tmp_path)
    assert APP["app"].openapi() == schema.raw_schema  # the document fuzzed is the app's own
    try:
        yield
    finally:
        APP.clear()
        asgi.shutdown_lifespans()


@schema.parametrize()
@fuzz_settings(max_examples=10)
def test_access_answers_every_generated_request_as_its_openapi_document_says(
    case: schemathesis.Case, role: tuple[str, str]
) -> None:
    app = APP["app"]
    authorization = {"Authorization": f"Bearer {token(*role)}"}
    response = case.call_and_validate(app=app, headers=authorization, checks=CHECKS)
    if needs_a_token(case, response):
        assert_unauthenticated_refused(case, app, None)
        assert_unauthenticated_refused(case, app, FORGER.mint(role[0], audience=AUDIENCE))
    if response.status_code in (400, 422):
        return  # refused before any object is looked up: other ids would change nothing
    # The same query and body against each seeded object (a failure shows the ids it used).
    for path_parameters in seeded_variants(case.path_parameters):
        case.path_parameters = path_parameters
        case.call_and_validate(app=app, headers=authorization, checks=CHECKS)
