"""Every portal page and form x every role x another project's objects: the portal shows and
changes only what the APIs allow the signed-in person.

The portal's routes are walked from the app itself, so a new page is in the matrix the moment it
exists. The portal calls the real access, link and ingest apps (in this process, through their
ASGI transports) with the person's token, exactly as it does over the network, and a worker's
real probe server for the status page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.ingest.entrypoints import create_app as create_ingest_app
from services.link.entrypoints import create_app as create_link_app
from services.portal.config import ApiUrls, PortalSettings
from services.portal.entrypoints import create_app
from services.runtime import probe
from tests.integration.access.conftest import Access, access  # noqa: F401 - fixtures
from tests.integration.access.test_authorisation_matrix import world  # noqa: F401
from tests.unit.ingest.support import FakeBus
from tests.unit.ingest.support import settings_for as ingest_settings_for
from tests.unit.link.review_support import queue_a_review, results_bus, settings_for

WORKER_STATUS = {
    "group": "access",
    "topics": ["link.results.v1"],
    "lag": {
        "total": 7,
        "partitions": [
            {"topic": "link.results.v1", "partition": 2, "committed": 3, "end": 10, "lag": 7}
        ],
    },
    "dead_letters": {
        "dead_letter_topic": "access.dead-letters.v1",
        "total": 1,
        "by_topic": {"link.results.v1": 1},
        "by_reason": {"services.runtime.delivery.PoisonMessage": 1},
    },
}
"""What the worker's probe answers here: the portal's part is whom it shows it to."""

AUDIENCES = ["fjo-access", "fjo-link", "fjo-ingest"]

ROLES: dict[str, tuple[str, list[str], str | None]] = {
    "researcher": ("alice", ["researcher"], None),  # accredited, owns project A
    "unaccredited": ("nobody", ["researcher"], None),
    "approver": ("carol", ["approver"], None),
    "output-checker": ("dave", ["output-checker"], None),
    "admin": ("root", ["admin"], None),
    "data-controller": ("cerys", ["data-controller"], "cafcass"),
    "link-reviewer": ("rita", ["link-reviewer"], None),
}

PUBLIC = {
    "/",
    "/sign-in",
    "/auth/callback",
    "/sign-out",
    "/signed-out",
    "/healthz",
    "/readyz",
    "/metrics",
    "/register",
    "/register.csv",
}
"""Pages anyone may reach: the home page, signing in and out, the operational probes, the
public register (what it shows: below, and tests/integration/access/test_register.py)."""

# Pages that show another project's object to a role because the API lets that role read it
# (the access matrix's allowances), or forms whose action the API answers with 409 for the
# foreign (active) project: they may answer 200/303/409/422; everyone else gets 403 or 404.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/projects/{project_id}"): {"approver", "admin", "data-controller"},
    ("GET", "/panel/{project_id}"): {"approver", "admin", "data-controller"},
    ("GET", "/sign-off/{project_id}"): {"approver", "admin", "data-controller"},
    ("POST", "/panel/{project_id}/approve"): {"approver"},  # 409: it is not submitted
    ("POST", "/panel/{project_id}/return"): {"approver"},
    ("POST", "/panel/{project_id}/reject"): {"approver"},
    ("POST", "/sign-off/{project_id}"): {"data-controller"},
    ("POST", "/projects/{project_id}/activate"): {"admin"},  # 409: it is active already
    ("GET", "/checking/{project_id}/{output_id}"): {"output-checker"},
    ("POST", "/checking/{project_id}/{output_id}"): {"output-checker"},
    ("GET", "/projects/{project_id}/outputs/{output_id}"): {"output-checker"},
    ("GET", "/projects/{project_id}/outputs/new"): {"approver", "admin", "data-controller"},
}

# Pages of one's own with no foreign object in them: every role may open them; what they
# list is the API's answer for that person (checked below for the researcher).
OWN_PAGES = {
    ("GET", "/projects"),
    ("GET", "/projects/new"),
    ("POST", "/projects/new"),  # creates the caller's own draft
    ("GET", "/panel"),
    ("GET", "/sign-off"),
    ("GET", "/status"),
}

FORMS: dict[str, dict[str, Any]] = {
    "/projects/new": {"title": "Mallory's copy"},
    "/panel/{project_id}/approve": {"access_until": "2099-01-01", "members": ["mallory"]},
    "/panel/{project_id}/return": {"comment": "x"},
    "/panel/{project_id}/reject": {"comment": "x"},
    "/checking/{project_id}/{output_id}": {"decision": "approve"},
    "/review/{record_token}": {"decision": "accept"},
    "/projects/{project_id}/outputs/new": {
        "title": "t",
        "source": "table:CHILD",
        "kind": "table",
        "index": "GNDR_CD",
    },
    "/projects/{project_id}/outputs/{output_id}/exception": {"reason": "r"},
    "/projects/{project_id}/outputs/{output_id}/resubmit": {"comment": "c"},
    "/projects/{project_id}/workspace/queries": {"sql": "SELECT count(*) FROM CHILD"},
    "/projects/{project_id}/workspace/jobs": {"script": "print(1)", "requirements": ["pandas"]},
}


class ByHost(httpx.BaseTransport):
    """The portal's calls to http://access and http://link, to the in-process apps (through
    their test clients: the request and the answer are copied across, nothing else)."""

    def __init__(self, clients: dict[str, TestClient]) -> None:
        self.clients = clients

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        client = self.clients[request.url.host]
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            headers=dict(request.headers),
            content=request.read(),
        )
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=answer.content
        )


@pytest.fixture
def site(access: Access, world: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Any]]:  # noqa: F811
    """The access matrix's world (project A of alice, project B of mallory with an extract and
    an output), a link review queue with one item, and the portal in front of both."""
    a = access
    link_settings = settings_for(tmp_path)
    record = queue_a_review(link_settings)
    link_app = create_link_app(
        link_settings,
        verifier=a.issuer.verifier(audience="fjo-link"),
        bus=results_bus(tmp_path),
    )
    ingest_app = create_ingest_app(
        ingest_settings_for(tmp_path),
        bus=FakeBus(),
        verifier=a.issuer.verifier(audience="fjo-ingest"),
    )
    worker_probe = probe.start_probe_server(0)
    worker_probe.set_status(lambda: WORKER_STATUS)
    with TestClient(link_app) as link, TestClient(ingest_app) as ingest:
        portal_app = create_app(
            PortalSettings(
                environment="dev",
                database_url=f"sqlite:///{tmp_path / 'portal.db'}",
                apis=ApiUrls(access="http://access", link="http://link", ingest="http://ingest"),
                status_workers={"access-worker": f"http://127.0.0.1:{worker_probe.port}"},
                page_size=1,  # every queue of two is two pages
            ),
            api_transport=ByHost({"access": a.client, "link": link, "ingest": ingest}),
        )
        with TestClient(portal_app, base_url="https://testserver") as portal:
            yield {
                "a": a,
                "portal": portal,
                "ids": {**world, "name": "CHILD.csv", "record_token": record},
            }
    worker_probe.close()


def sign_in(site: dict[str, Any], role: str) -> str:
    """A session for ``role`` (as the OIDC callback makes it); its CSRF token."""
    return sign_in_as(site, *ROLES[role])


def sign_in_as(site: dict[str, Any], subject: str, roles: list[str], source: str | None) -> str:
    a, portal = site["a"], site["portal"]
    token = a.issuer.mint(
        subject, audience="fjo-access", roles=roles, source=source, extra={"aud": AUDIENCES}
    )
    store = portal.app.state.web.store
    raw = store.create(
        subject=subject,
        name=subject,
        roles=frozenset(roles),
        access_token=token,
        id_token=None,
        token_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    portal.cookies.clear()
    portal.cookies.set("__Host-fjo-session", raw)
    who = store.get(raw)
    assert who is not None
    return who.csrf_token


def _walk(routes: Any) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(getattr(route, "original_router", None), "routes", None)
        if included:
            yield from _walk(included)


def routes(app: Any) -> list[tuple[str, str]]:
    found = {
        (m, route.path)
        for route in _walk(app.routes)
        if route.path not in PUBLIC
        for m in route.methods
        if m != "HEAD"
    }
    assert len(found) > 20
    return sorted(found)


def call(site: dict[str, Any], method: str, path: str, csrf: str) -> httpx.Response:
    ids = site["ids"]
    url = path.format(**{p: ids[p] for p in re.findall(r"{(\w+)}", path)})
    if method == "GET":
        return site["portal"].get(url, follow_redirects=False)
    form = {"csrf_token": csrf, **FORMS.get(path, {})}
    return site["portal"].post(url, data=form, follow_redirects=False)


def test_every_page_and_form_refuses_every_role_another_projects_objects(
    site: dict[str, Any],
) -> None:
    a, ids = site["a"], site["ids"]
    before = a.client.get(f"/v1/projects/{ids['project_id']}", headers=a.h("root", "admin")).json()
    checked = 0
    for method, path in routes(site["portal"].app):
        if (method, path) in OWN_PAGES or path in (
            "/review",
            "/checking",
            "/review/{record_token}",
        ):
            continue  # below: not about another project's objects
        for role in ROLES:
            status = call(site, method, path, sign_in(site, role)).status_code
            if role in ALLOWED.get((method, path), set()):
                # 409/422: the API refuses the change for the foreign project's state or data.
                assert status in (200, 303, 409, 422), f"{role} got {status} on {method} {path}"
                continue
            # A form the API refuses as not valid (422) changes nothing either (checked below).
            refusals = (403, 404, 422) if method == "POST" else (403, 404)
            assert status in refusals, f"{role} got {status} on {method} {path}"
            if role == "researcher":
                assert status == 404, f"{method} {path} revealed a foreign object ({status})"
            checked += 1
    assert checked > 100
    after = a.client.get(f"/v1/projects/{ids['project_id']}", headers=a.h("root", "admin")).json()
    assert (after["state"], after["decisions"], after["sign_offs"]) == (
        before["state"],
        before["decisions"],
        before["sign_offs"],
    )
    b = f"/v1/projects/{ids['project_id']}/workspace"
    mallory = a.h("mallory", "researcher")
    outputs = a.client.get(f"{b}/outputs", headers=mallory).json()["items"]
    assert [o["state"] for o in outputs] == ["submitted"]  # no form added or released one
    assert [o["exception"] for o in outputs] == [None]
    queries = a.client.get(f"{b}/queries", headers=mallory).json()["items"]
    assert len(queries) == 1  # none run by others
    assert len(a.client.get(f"{b}/jobs", headers=mallory).json()["items"]) == 2


def test_queues_and_lists_show_only_what_the_api_gives_the_person(site: dict[str, Any]) -> None:
    portal = site["portal"]
    sign_in(site, "researcher")
    page = portal.get("/projects").text
    assert "Project A" in page and "Project B of mallory" not in page
    for path in ("/checking", "/review"):
        assert portal.get(path).status_code == 403, path  # not a checker nor a reviewer
    # The status page's readiness is public; the audit verification and the quarantine
    # summary are the APIs' to refuse, the workers' figures the portal's (operators only).
    page = portal.get("/status").text
    assert page.count("Not available to you") == 3
    assert "lag-access-worker" not in page and "PoisonMessage" not in page
    for role in ("approver", "output-checker", "data-controller", "link-reviewer"):
        sign_in(site, role)
        assert portal.get("/status").text.count("Not available to you") == 3, role
    sign_in(site, "admin")
    page = portal.get("/status").text
    assert "Not available to you" not in page
    assert 'id="lag-access-worker"' in page and "services.runtime.delivery.PoisonMessage" in page
    assert "records refused at ingest" in page
    sign_in(site, "output-checker")
    assert site["ids"]["output_id"] in portal.get("/checking").text
    sign_in(site, "link-reviewer")
    assert "Is this record the spine person?" in portal.get("/review").text
    assert portal.get("/projects").text.count("/projects/") == 1  # only "apply"


def test_a_queue_longer_than_a_page_shows_a_next_page_link_to_the_rest(
    site: dict[str, Any],
) -> None:
    portal, ids = site["portal"], site["ids"]
    sign_in(site, "approver")
    first = portal.get("/panel").text
    assert f"/panel/{ids['project_a']}" in first and f"/panel/{ids['project_id']}" not in first
    link = re.search(r'href="(/panel\?cursor=[A-Za-z0-9_-]+)" rel="next"', first)
    assert link is not None and 'class="govuk-pagination' in first
    second = portal.get(link.group(1)).text
    assert f"/panel/{ids['project_id']}" in second and f"/panel/{ids['project_a']}" not in second
    assert 'rel="next"' not in second  # the last page
    assert portal.get("/panel?cursor=not!a!cursor").status_code == 422


def test_the_public_register_opens_signed_out_and_shows_only_published_projects(
    site: dict[str, Any],
) -> None:
    portal = site["portal"]
    portal.cookies.clear()
    page = portal.get("/register", follow_redirects=False)
    assert page.status_code == 200, page.text
    assert "Project A" in page.text and "Sign in" in page.text  # signed out
    csv_page = portal.get("/register.csv", follow_redirects=False)
    assert csv_page.status_code == 200 and csv_page.text.startswith("id,title,purpose")
    assert portal.get("/register?cursor=forged", follow_redirects=False).status_code == 422
    a, ids = site["a"], site["ids"]
    listed = {p["id"] for p in a.client.get("/v1/register/projects").json()["items"]}
    assert ids["project_a"] in listed and ids["project_id"] in listed  # both published


def test_a_form_without_the_sessions_csrf_token_changes_nothing(site: dict[str, Any]) -> None:
    portal, ids = site["portal"], site["ids"]
    sign_in(site, "researcher")
    r = portal.post(f"/projects/{ids['project_a']}/extracts", data={"csrf_token": "forged"})
    assert r.status_code == 403
    a = site["a"]
    extracts = a.client.get(
        f"/v1/projects/{ids['project_a']}/extracts", headers=a.h("alice", "researcher")
    ).json()
    assert extracts["items"] == []


def test_every_page_needs_a_session(site: dict[str, Any]) -> None:
    portal = site["portal"]
    portal.cookies.clear()
    for method, path in routes(portal.app):
        r = call(site, method, path, "none")
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/sign-in"), path
        else:
            assert r.status_code in (303, 403), path
            assert not r.headers.get("location", "/sign-in").startswith("/projects"), path


def test_a_member_works_in_their_own_workspace_and_airlock_through_the_pages(
    site: dict[str, Any],
) -> None:
    """The other side of the matrix: project B's own member sees and uses every page (no
    JavaScript: plain form posts), and a checker sees ACRO's result and comments."""
    portal, ids = site["portal"], site["ids"]
    pid, oid = ids["project_id"], ids["output_id"]
    csrf = sign_in_as(site, "mallory", ["researcher"], None)
    page = portal.get(f"/projects/{pid}/workspace")
    assert page.status_code == 200, page.text
    assert "GNDR_CD" in page.text and "permits row-level download" in page.text
    r = portal.post(
        f"/projects/{pid}/workspace/queries",
        data={"csrf_token": csrf, "sql": "SELECT * FROM read_text('/etc/hostname')"},
    )
    assert r.status_code == 200 and "file-access" in r.text  # the refusal's own page
    r = portal.post(
        f"/projects/{pid}/workspace/queries",
        data={"csrf_token": csrf, "sql": "SELECT GNDR_CD, count(*) AS n FROM CHILD GROUP BY 1"},
    )
    assert r.status_code == 200 and 'id="preview"' in r.text and "query-to-output" in r.text
    page = portal.get(f"/projects/{pid}/workspace").text
    assert page.count("file-access") == 1 and page.count("/workspace/queries/") == 3
    r = portal.post(
        f"/projects/{pid}/workspace/jobs",
        data={"csrf_token": csrf, "script": "print('hello')", "name": "hello"},
    )
    assert r.status_code == 200 and "succeeded" in r.text and "hello" in r.text  # its log
    r = portal.post(
        f"/projects/{pid}/workspace/jobs",
        data={"csrf_token": csrf, "script": "print(1)", "requirements": ["left-pad"]},
    )
    assert r.status_code == 422 and "not in the job runtime&#39;s allow-list" in r.text
    dummy = portal.get(f"/projects/{pid}/workspace/dummy/CHILD.csv")
    assert dummy.status_code == 200 and "DUMMY_CHILD.csv" in dummy.headers["content-disposition"]
    page = portal.get(f"/projects/{pid}/outputs/new?source=job:{ids['job_id']}:x")
    assert page.status_code == 200 and "note.txt" in page.text  # the note job's file
    r = portal.post(
        f"/projects/{pid}/outputs/new",
        data={"csrf_token": csrf, "title": "t", "source": "query:", "kind": "table"},
    )
    assert r.status_code == 422 and "choose a query result" in r.text
    r = portal.get(f"/projects/{pid}/outputs/{oid}")
    assert r.status_code == 200 and "A person must judge this output" in r.text
    assert "output-files" not in r.text  # not released: nothing to download
    assert portal.get(f"/projects/{pid}/outputs/{oid}/files/note.txt").status_code == 409

    csrf = sign_in(site, "output-checker")
    r = portal.get(f"/checking/{pid}/{oid}")
    assert r.status_code == 200 and "note.txt" in r.text and 'id="approve-output"' in r.text
    assert portal.get(f"/projects/{pid}/outputs/{oid}/files/note.txt").status_code == 200
    r = portal.post(
        f"/checking/{pid}/{oid}",
        data={"csrf_token": csrf, "decision": "comment", "comment": "What is in the note?"},
    )
    assert r.status_code == 200 and "Your comment is recorded" in r.text
    r = portal.post(
        f"/checking/{pid}/{oid}", data={"csrf_token": csrf, "decision": "return", "comment": ""}
    )
    assert r.status_code == 422  # a return says why
    r = portal.post(
        f"/checking/{pid}/{oid}",
        data={"csrf_token": csrf, "decision": "return", "comment": "Say what it is."},
    )
    assert "returned to its author" in r.text

    csrf = sign_in_as(site, "mallory", ["researcher"], None)
    r = portal.get(f"/projects/{pid}/outputs/{oid}")
    assert "What is in the note?" in r.text and 'id="resubmit"' in r.text
    r = portal.post(
        f"/projects/{pid}/outputs/{oid}/resubmit",
        data={"csrf_token": csrf, "comment": "It is a note.", "preset": "acro"},
    )
    assert r.status_code == 200 and "Revision 2 is submitted" in r.text


def test_the_workspace_page_says_when_its_extract_must_be_rebuilt(site: dict[str, Any]) -> None:
    from sqlalchemy import select

    from services.access.objections import flag_extracts
    from services.access.storage.models import ExtractHoldingRow, ExtractRow
    from services.runtime.db import transaction

    portal, ids, a = site["portal"], site["ids"], site["a"]
    pid = ids["project_id"]
    sign_in_as(site, "mallory", ["researcher"], None)
    assert 'id="rebuild-needed"' not in portal.get(f"/projects/{pid}/workspace").text
    with transaction(a.ctx.sessions) as s:
        held = s.execute(
            select(ExtractHoldingRow.record_token)
            .join(ExtractRow, ExtractRow.id == ExtractHoldingRow.extract_id)
            .where(ExtractRow.project_id == pid)
            .limit(1)
        ).scalar_one()
        flag_extracts(s, a.ctx.audit, tokens=[held], reason="objection: records withdrawn")

    page = portal.get(f"/projects/{pid}/workspace").text
    assert 'id="rebuild-needed"' in page and "objection: records withdrawn" in page
