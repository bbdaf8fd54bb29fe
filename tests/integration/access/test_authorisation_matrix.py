"""Every endpoint x every role x a foreign object: denied.

The endpoints are enumerated from the app itself (``app.routes``, checked against the
OpenAPI document), so a new endpoint is in the matrix the moment it exists: without a
sample body or an explicit allowance it fails this test until someone decides its rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from services.access.domain.catalogue import QUASI_IDENTIFIERS
from tests.integration.access.conftest import (
    ADMIN,
    APPROVER,
    FAR,
    Access,
    active_project,
    family_court_data,
    note_job,
    note_output,
    register,
)

OPERATIONAL = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
"""Public by design: liveness, readiness, metrics and the API's own documentation."""

PUBLIC_REGISTER = {
    ("GET", "/v1/register/projects"),
    ("GET", "/v1/register/projects.csv"),
}
"""Public by design: the transparency register (what it may show: test_register.py)."""

# A valid body for every endpoint that takes one, so that the request reaches authorisation
# instead of stopping at validation.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/researchers"): {
        "subject": "mallory",
        "display_name": "M",
        "accredited_until": FAR,
    },
    ("PUT", "/v1/researchers/{subject}/accreditation"): {"accredited_until": FAR},
    ("POST", "/v1/projects"): {"title": "Another project"},
    ("PATCH", "/v1/projects/{project_id}"): {"title": "Renamed"},
    ("POST", "/v1/projects/{project_id}/members"): {"subject": "alice"},
    ("POST", "/v1/projects/{project_id}/approve"): {
        "datasets": ["case"],
        "variables": [],
        "window_start": "2015-01-01",
        "window_end": "2019-12-31",
        "members": ["mallory"],
        "access_until": FAR,
        "quasi_identifiers": list(QUASI_IDENTIFIERS),
    },
    ("POST", "/v1/projects/{project_id}/workspace/queries"): {"sql": "SELECT 1"},
    ("POST", "/v1/projects/{project_id}/workspace/jobs"): {"script": "print(1)"},
    ("POST", "/v1/projects/{project_id}/workspace/outputs"): {
        "title": "t",
        "kind": "table",
        "source": {"table": "CHILD"},
        "spec": {"index": ["GNDR_CD"]},
    },
    ("POST", "/v1/projects/{project_id}/workspace/outputs/{output_id}/exception"): {"reason": "r"},
    ("POST", "/v1/projects/{project_id}/workspace/outputs/{output_id}/resubmit"): {},
    ("POST", "/v1/projects/{project_id}/workspace/outputs/{output_id}/reviews"): {
        "decision": "approve"
    },
}

ROLE_NAMES = (
    "researcher",
    "unaccredited",
    "approver",
    "output-checker",
    "admin",
    "data-controller",
)

# (method, path) → roles that may legitimately act on the foreign project's object.
# Everything not listed here must be refused (401/403/404) for every role.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/v1/catalogue"): set(ROLE_NAMES),
    ("POST", "/v1/projects"): {"researcher"},  # creates the caller's own draft
    ("GET", "/v1/projects"): set(ROLE_NAMES),
    # A controller reads a project that uses its data, to sign it off.
    ("GET", "/v1/projects/{project_id}"): {"approver", "admin", "data-controller"},
    ("POST", "/v1/projects/{project_id}/return"): {"approver"},
    ("POST", "/v1/projects/{project_id}/reject"): {"approver"},
    ("POST", "/v1/projects/{project_id}/sign-offs"): {"data-controller"},
    ("POST", "/v1/projects/{project_id}/approve"): {"approver"},
    ("POST", "/v1/projects/{project_id}/activate"): {"admin"},
    ("POST", "/v1/projects/{project_id}/close"): {"admin"},
    # Independent checkers see a project's airlock (its outputs and their checks) and review.
    ("GET", "/v1/projects/{project_id}/workspace/outputs"): {"output-checker"},
    ("GET", "/v1/projects/{project_id}/workspace/outputs/{output_id}"): {"output-checker"},
    ("POST", "/v1/projects/{project_id}/workspace/outputs/{output_id}/reviews"): {"output-checker"},
    ("GET", "/v1/workspace/outputs"): {"output-checker"},
    ("POST", "/v1/researchers"): {"admin"},
    ("GET", "/v1/researchers"): {"admin"},
    ("GET", "/v1/researchers/{subject}"): {"admin"},
    ("PUT", "/v1/researchers/{subject}/accreditation"): {"admin"},
    ("GET", "/v1/audit/verify"): {"admin"},
    ("GET", "/v1/objections/summary"): {"admin"},
}

ROLES: dict[str, tuple[str, ...]] = {
    "researcher": ("alice", "researcher"),  # accredited, owns project A, not on project B
    "unaccredited": ("nobody", "researcher"),  # holds the role but no accreditation
    "approver": APPROVER,
    "output-checker": ("dave", "output-checker"),
    "admin": ADMIN,
}


def headers_of(a: Access, role: str) -> dict[str, str]:
    """The role's bearer token; a data controller's names the controller (Cafcass)."""
    return a.controller("cafcass") if role == "data-controller" else a.h(*ROLES[role])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _walk(routes: Iterable[Any]) -> Iterable[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        children = getattr(getattr(route, "original_router", None), "routes", None)
        if children is None:
            children = getattr(route, "routes", None)
        if children:
            yield from _walk(children)


def endpoints(app: Any) -> list[Endpoint]:
    found = {
        Endpoint(method, route.path)
        for route in _walk(app.routes)
        for method in route.methods
        if method != "HEAD"
    }
    documented = {
        Endpoint(method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
    }
    # The walk and the OpenAPI document must agree, so neither can hide an endpoint.
    public = OPERATIONAL | PUBLIC_REGISTER
    assert {e for e in found if e.key not in OPERATIONAL} == {
        e for e in documented if e.key not in OPERATIONAL
    }
    assert {e.key for e in found} >= PUBLIC_REGISTER  # a renamed public route is noticed
    return sorted((e for e in found | documented if e.key not in public), key=lambda e: e.key)


@pytest.fixture
def world(access: Access) -> dict[str, str]:
    """Project A (alice, bob) and project B (mallory) with an extract, a query, jobs and an
    airlock output."""
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob", "mallory")
    register(a, "nobody", until="2020-01-01")
    project_a = active_project(a, "alice", ("bob",), title="Project A")
    project_b = active_project(a, "mallory", (), title="Project B")
    r = a.client.post(f"/v1/projects/{project_b}/extracts", headers=a.h("mallory", "researcher"))
    extract_b = r.json()["id"]
    r = a.client.post(
        f"/v1/projects/{project_b}/workspace/queries",
        json={"sql": "SELECT count(*) AS n FROM CHILD"},
        headers=a.h("mallory", "researcher"),
    )
    assert r.status_code == 201, r.text
    query_b = r.json()["id"]
    r = a.client.post(
        f"/v1/projects/{project_b}/workspace/jobs",
        json={"script": "print(1)"},
        headers=a.h("mallory", "researcher"),
    )
    assert r.status_code == 202, r.text
    job_b = r.json()["id"]
    job_b_note = note_job(a, project_b, who="mallory")
    output_b = note_output(a, project_b, job_b_note, who="mallory")
    return {
        "project_a": project_a,
        "project_id": project_b,
        "extract_id": extract_b,
        "output_id": output_b,
        "query_id": query_b,
        "job_id": job_b,
        "subject": "mallory",
        "name": "CHILD.parquet",
    }


def _call(a: Access, endpoint: Endpoint, ids: dict[str, str], headers: dict[str, str]) -> int:
    missing = [p for p in endpoint.params() if p not in ids]
    assert not missing, f"{endpoint.key}: no foreign object for {missing}; add one to world()"
    url = endpoint.path.format(**{p: ids[p] for p in endpoint.params()})
    body = BODIES.get(endpoint.key)
    if endpoint.method in {"POST", "PUT", "PATCH"} and body is None:
        route_has_body = endpoint.key not in {
            ("POST", p)
            for p in (
                "/v1/projects/{project_id}/submit",
                "/v1/projects/{project_id}/return",
                "/v1/projects/{project_id}/reject",
                "/v1/projects/{project_id}/sign-offs",
                "/v1/projects/{project_id}/activate",
                "/v1/projects/{project_id}/close",
                "/v1/projects/{project_id}/extracts",
            )
        }
        assert not route_has_body, f"{endpoint.key}: give the matrix a valid sample body"
    return a.client.request(endpoint.method, url, json=body, headers=headers).status_code


def test_every_endpoint_refuses_every_role_on_a_foreign_projects_objects(
    access: Access, world: dict[str, str]
) -> None:
    a = access
    checked = 0
    for endpoint in endpoints(a.client.app):
        for role in ROLE_NAMES:
            if role in ALLOWED.get(endpoint.key, set()):
                continue
            status = _call(a, endpoint, world, headers_of(a, role))
            assert status in (401, 403, 404), f"{role} got {status} on {endpoint.key}"
            if role == "researcher" and "{project_id}" in endpoint.path:
                # A researcher is not even told that another project's objects exist.
                assert status == 404, f"{endpoint.key} revealed a foreign object ({status})"
            checked += 1
    assert checked > 70


def test_every_endpoint_refuses_callers_without_a_valid_token(
    access: Access, world: dict[str, str]
) -> None:
    a = access
    wrong_audience = a.issuer.mint("alice", audience="fjo-ingest", roles=["researcher"])
    for endpoint in endpoints(a.client.app):
        for headers in ({}, {"Authorization": f"Bearer {wrong_audience}"}):
            status = _call(a, endpoint, world, headers)
            assert status == 401, f"{endpoint.key} answered {status} without a valid token"


def test_a_foreign_object_named_under_ones_own_project_is_not_found(
    access: Access, world: dict[str, str]
) -> None:
    a = access
    own = dict(world, project_id=world["project_a"])
    for endpoint in endpoints(a.client.app):
        if "{project_id}" not in endpoint.path or not {
            "extract_id",
            "output_id",
            "query_id",
            "job_id",
        } & set(endpoint.params()):
            continue
        status = _call(a, endpoint, own, a.h("alice", "researcher"))
        assert status == 404, f"{endpoint.key} gave {status} for another project's object"


def test_lists_show_only_the_callers_projects(access: Access, world: dict[str, str]) -> None:
    a = access
    listed = a.client.get("/v1/projects", headers=a.h("alice", "researcher")).json()
    assert {p["id"] for p in listed["items"]} == {world["project_a"]}
    for who in (ROLES["unaccredited"], ROLES["output-checker"]):
        assert a.client.get("/v1/projects", headers=a.h(*who)).json()["items"] == []
    checker = a.h("mallory", "researcher", "output-checker")
    queue = a.client.get("/v1/workspace/outputs", headers=checker)
    # not their own project's
    assert world["output_id"] not in {o["id"] for o in queue.json()["items"]}
    queue = a.client.get("/v1/workspace/outputs", headers=a.h(*ROLES["output-checker"]))
    assert world["output_id"] in {o["id"] for o in queue.json()["items"]}
