"""The access service over HTTP on a fresh database (SQLite and PostgreSQL via ``db_url``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.access.bootstrap import AccessContext
from services.access.config import AccessSettings, AuthSettings, ExtractSettings, WorkspaceSettings
from services.access.entrypoints import create_app
from services.access.storage.research_store import (
    LinkResult,
    StoredRecord,
    apply_link_result,
    apply_record,
)
from services.runtime.auth import DevIssuer
from services.runtime.db import transaction
from tests.audit_keys import signing_key_file

AUDIENCE = "fjo-access"
JWKS_URL = "https://issuer.invalid/jwks"
FAR = (date.today() + timedelta(days=365)).isoformat()


def token(label: str) -> str:
    """A record-token-shaped string (base64url, 43 chars) for a label."""
    digest = hashlib.sha256(label.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Access:
    client: TestClient
    issuer: DevIssuer
    ctx: AccessContext
    raw_alfs: set[str] = field(default_factory=set)
    raw_tokens: set[str] = field(default_factory=set)

    def h(self, subject: str, *roles: str) -> dict[str, str]:
        minted = self.issuer.mint(subject, audience=AUDIENCE, roles=list(roles))
        return {"Authorization": f"Bearer {minted}"}

    def controller(self, controller: str) -> dict[str, str]:
        """The headers of the person who signs for ``controller``."""
        minted = self.issuer.mint(
            CONTROLLERS[controller],
            audience=AUDIENCE,
            roles=["data-controller"],
            source=controller,
        )
        return {"Authorization": f"Bearer {minted}"}

    def seed(self, records: list[StoredRecord], links: list[LinkResult]) -> None:
        with transaction(self.ctx.sessions) as s:
            for r in records:
                apply_record(s, r)
                self.raw_tokens.add(r.record_token)
            for link in links:
                apply_link_result(s, link)
                if link.alf:
                    self.raw_alfs.add(link.alf)


CASES = 12


def family_court_data(
    n_children: int = 60, *, unique_children: int = 3, start: date = date(2016, 1, 4)
) -> tuple[list[StoredRecord], list[LinkResult]]:
    """A dozen cases (a month apart, one local authority: ten or more are needed for the
    cases to keep their pseudonymised authority under k = 10), children in a few big
    quasi-identifier classes plus a few unique ones."""
    records: list[StoredRecord] = []
    links: list[LinkResult] = []
    for c in range(CASES):
        records.append(
            StoredRecord(
                record_token=token(f"case-{c}"),
                record_type="case",
                source="cafcass-cymru",
                local_authority="W06000015",
                event_date=start + timedelta(days=30 * c),
                content={
                    "law_type": "public",
                    "orders_sought": ["s31-care"],
                    "received_date": (start + timedelta(days=30 * c)).isoformat(),
                    "court": "CRT01",
                },
            )
        )
    for i in range(n_children + unique_children):
        unique = i >= n_children
        klass = i % 3
        rec = StoredRecord(
            record_token=token(f"child-{i}"),
            record_type="child",
            source="cafcass-cymru",
            week_of_birth=date(2015, 6, 1) + timedelta(weeks=klass + (10 * i if unique else 0)),
            sex=1 + klass % 2,
            lsoa=f"W0100{klass}" if not unique else f"W0199{i}",
            local_authority="W06000015",
            related_tokens={"case": token(f"case-{i % CASES}")},
            content={"ethnicity": "white-british", "living_situation": "with-mother"},
        )
        records.append(rec)
        # 80 % linked, like Cafcass Cymru's link rate; one person appears twice.
        if i % 5 != 4:
            alf = token(f"alf-{3 if i == 7 else i}")
            links.append(LinkResult(rec.record_token, 1, alf, 4, 0.99, "fs-1"))
        else:
            links.append(LinkResult(rec.record_token, 1, None, 99, 0.2, "fs-1"))
    # A case outside every window.
    records.append(
        StoredRecord(
            record_token=token("case-old"),
            record_type="case",
            source="cafcass",
            event_date=date(2001, 1, 1),
            content={"law_type": "private", "received_date": "2001-01-01"},
        )
    )
    return records, links


def settings_for(db_url: str, tmp_path: Path, **kw: Any) -> AccessSettings:
    return AccessSettings(
        database_url=db_url,
        environment="test",
        pseudonym_master_key=SecretStr("test-pseudonym-master-key-0123456789"),
        audit_signing_key_file=signing_key_file(tmp_path),
        auth=AuthSettings(jwks_url=JWKS_URL),  # never fetched: the tests inject a verifier
        extracts=ExtractSettings(directory=tmp_path / "extracts", **kw),
    )


def serve(settings: AccessSettings) -> Iterator[Access]:
    """The access API on ``settings`` behind a test client, with a dev issuer's tokens."""
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    app = create_app(settings, verifier=issuer.verifier(audience=AUDIENCE))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Access(client=client, issuer=issuer, ctx=app.state.access)


@pytest.fixture
def access(db_url: str, tmp_path: Path) -> Iterator[Access]:
    yield from serve(settings_for(db_url, tmp_path))


def with_workspace(db_url: str, tmp_path: Path, workspace: WorkspaceSettings) -> Iterator[Access]:
    """``serve`` with the workspace's settings (query and job limits) replaced."""
    yield from serve(settings_for(db_url, tmp_path).model_copy(update={"workspace": workspace}))


def two_workspaces(a: Access) -> dict[str, str]:
    """Project A (alice, bob) and project B (mallory), each with a built extract; neither
    permits row-level download. Ids under a, b, extract_a, extract_b."""
    a.seed(*family_court_data())
    register(a, "alice", "bob", "mallory")
    ids = {}
    for key, owner, members in (("a", "alice", ("bob",)), ("b", "mallory", ())):
        pid = active_project(a, owner, members, title=f"Project {key}", egress=())
        r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h(owner, "researcher"))
        assert r.status_code == 202, r.text
        ids[key], ids[f"extract_{key}"] = pid, r.json()["id"]
    return ids


def cli_through(a: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fjo workspace ...`` talks to this test client instead of a URL."""
    from fjo import workspace_cli

    monkeypatch.setattr(
        workspace_cli,
        "_client",
        lambda url, tok, project: workspace_cli.WorkspaceClient(url, tok, project, client=a.client),
    )


def cli_env(a: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fjo ...`` reads the settings of the service under test from the environment."""
    settings = a.ctx.settings
    monkeypatch.setenv("FJO_ACCESS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FJO_ENVIRONMENT", settings.environment.value)
    monkeypatch.setenv("FJO_ACCESS_AUTH__JWKS_URL", settings.auth.jwks_url or "")
    monkeypatch.setenv(
        "FJO_ACCESS_PSEUDONYM_MASTER_KEY", settings.pseudonym_master_key.get_secret_value()
    )
    monkeypatch.setenv("FJO_ACCESS_AUDIT_SIGNING_KEY_FILE", str(settings.audit_signing_key_file))
    monkeypatch.setenv("FJO_ACCESS_EXTRACTS__DIRECTORY", str(settings.extracts.directory))
    monkeypatch.setenv("FJO_ACCESS_MIGRATE_ON_START", "false")


def built_extract(a: Access, pid: str, who: str = "bob") -> dict[str, Any]:
    """Request an extract of ``pid`` as ``who`` and return it (built: the test client runs
    the background job before answering)."""
    headers = a.h(who, "researcher")
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=headers)
    assert r.status_code == 202, r.text
    got = a.client.get(f"/v1/projects/{pid}/extracts/{r.json()['id']}", headers=headers).json()
    assert got["state"] == "succeeded", got
    return dict(got)


def held_records(a: Access, extract_id: str) -> set[str]:
    """The record tokens an extract holds (access_extract_holdings)."""
    from sqlalchemy import select

    from services.access.storage.models import ExtractHoldingRow

    with a.ctx.sessions() as s:
        return set(
            s.execute(
                select(ExtractHoldingRow.record_token).where(
                    ExtractHoldingRow.extract_id == extract_id
                )
            ).scalars()
        )


ADMIN = ("root", "admin")
APPROVER = ("carol", "approver")
CHECKER_1 = ("dave", "output-checker")
CHECKER_2 = ("erin", "output-checker")
CONTROLLERS = {"cafcass": "cerys", "cafcass-cymru": "catrin", "wds": "gareth"}
"""Who signs for each data controller in these tests."""


def register(a: Access, *subjects: str, until: str = FAR) -> None:
    for subject in subjects:
        r = a.client.post(
            "/v1/researchers",
            json={"subject": subject, "display_name": subject.title(), "accredited_until": until},
            headers=a.h(*ADMIN),
        )
        assert r.status_code == 201, r.text


def sign_off(a: Access, pid: str) -> None:
    """Every data controller the project needs signs it (before the panel can approve)."""
    needed = a.client.get(f"/v1/projects/{pid}", headers=a.h(*ADMIN)).json()
    for controller in needed["controllers_required"]:
        r = a.client.post(
            f"/v1/projects/{pid}/sign-offs",
            headers=a.controller(controller),
        )
        assert r.status_code == 201, r.text


def active_project(
    a: Access,
    owner: str = "alice",
    members: tuple[str, ...] = ("bob",),
    *,
    title: str = "Newborns in care proceedings",
    variables: tuple[str, ...] = ("WOB", "GNDR_CD", "LSOA_CD", "CASE_ID_E", "LAW_TYPE", "LA_CD_E"),
    egress: tuple[str, ...] = ("row-level-download",),
    **approval: Any,
) -> str:
    """Create, submit, approve and activate a project; returns its id. The panel permits
    row-level download unless ``egress`` says otherwise: most tests here read the extract's
    files (tests/integration/access/test_workspace.py holds the default, none). ``approval``
    adds fields to the approval (``retention_days``, ``publish_in_register``, ...)."""
    r = a.client.post(
        "/v1/projects",
        json={"title": title, "datasets": ["case", "child"], "variables": list(variables)},
        headers=a.h(owner, "researcher"),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    quasi_identifiers = r.json()["quasi_identifiers"]  # what the approver is shown, and pins
    for m in members:
        r = a.client.post(
            f"/v1/projects/{pid}/members", json={"subject": m}, headers=a.h(owner, "researcher")
        )
        assert r.status_code == 201, r.text
    assert (
        a.client.post(f"/v1/projects/{pid}/submit", headers=a.h(owner, "researcher")).status_code
        == 200
    )
    sign_off(a, pid)
    r = a.client.post(
        f"/v1/projects/{pid}/approve",
        json={
            "datasets": ["case", "child"],
            "variables": list(variables),
            "window_start": "2015-01-01",
            "window_end": "2019-12-31",
            "members": [owner, *members],
            "access_until": FAR,
            "quasi_identifiers": quasi_identifiers,
            "egress": list(egress),
            **approval,
        },
        headers=a.h(*APPROVER),
    )
    assert r.status_code == 200, r.text
    r = a.client.post(f"/v1/projects/{pid}/activate", headers=a.h(owner, "researcher"))
    assert r.status_code == 200, r.text
    return pid


NOTE_JOB = "open('/output/note.txt', 'w').write('a free-form note')"
"""A job that writes one free-form file: the cheapest airlock source (no ACRO run for it)."""


def note_job(a: Access, pid: str, who: str = "bob") -> str:
    """Run ``NOTE_JOB`` in the project's workspace (its extract must be built); its id."""
    r = a.client.post(
        f"/v1/projects/{pid}/workspace/jobs",
        json={"name": "note", "script": NOTE_JOB},
        headers=a.h(who, "researcher"),
    )
    assert r.status_code == 202, r.text
    job = a.client.get(
        f"/v1/projects/{pid}/workspace/jobs/{r.json()['id']}", headers=a.h(who, "researcher")
    ).json()
    assert job["state"] == "succeeded", job
    return str(job["id"])


def note_output(
    a: Access,
    pid: str,
    job: str,
    *checkers: tuple[str, str],
    who: str = "bob",
    title: str = "A note",
) -> str:
    """The job's note asked out through the airlock, approved by ``checkers`` (two release
    it); its id."""
    r = a.client.post(
        f"/v1/projects/{pid}/workspace/outputs",
        json={"title": title, "kind": "file", "source": {"job": job, "file": "note.txt"}},
        headers=a.h(who, "researcher"),
    )
    assert r.status_code == 201, r.text
    oid = str(r.json()["id"])
    for checker in checkers:
        r = a.client.post(
            f"/v1/projects/{pid}/workspace/outputs/{oid}/reviews",
            json={"decision": "approve"},
            headers=a.h(*checker),
        )
        assert r.status_code == 201, r.text
    return oid
