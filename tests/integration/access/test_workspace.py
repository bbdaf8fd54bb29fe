"""The project's workspace inside the TRE: its extract stays there unless the panel permits
row-level download explicitly (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select

from services.access.storage.models import AuditLogRow, ExtractRow
from tests.integration.access.conftest import (
    Access,
    active_project,
    family_court_data,
    register,
)


def _extract(a: Access, pid: str, who: str = "bob") -> str:
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h(who, "researcher"))
    assert r.status_code == 202, r.text
    eid: str = r.json()["id"]
    state = a.client.get(f"/v1/projects/{pid}/extracts/{eid}", headers=a.h(who, "researcher"))
    assert state.json()["state"] == "succeeded", state.text
    return eid


@dataclass(frozen=True)
class Entry:
    actor: str | None
    outcome: str
    object_id: str | None
    detail: dict[str, Any]


def _audit(a: Access, action: str) -> list[Entry]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow).where(AuditLogRow.action == action).order_by(AuditLogRow.seq)
        ).scalars()
        return [Entry(r.actor, r.outcome, r.object_id, json.loads(r.detail)) for r in rows]


def test_row_level_download_is_off_unless_the_panel_permits_it(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a, egress=())
    project = a.client.get(f"/v1/projects/{pid}", headers=a.h("bob", "researcher")).json()
    assert project["approval"]["egress"] == []
    eid = _extract(a, pid)
    h = a.h("bob", "researcher")
    base = f"/v1/projects/{pid}/extracts/{eid}/files"
    # The manifest and the data dictionary describe the data: they stay readable.
    assert a.client.get(f"{base}/manifest.json", headers=h).status_code == 200
    assert a.client.get(f"{base}/data_dictionary.json", headers=h).status_code == 200
    for name in ("CHILD.parquet", "CHILD.csv", "CASE.parquet"):
        r = a.client.get(f"{base}/{name}", headers=h)
        assert r.status_code == 403, (name, r.text)
        assert "row-level download" in r.json()["detail"]
    refusals = [e for e in _audit(a, "extract.download") if e.outcome == "denied"]
    assert len(refusals) == 3 and {e.object_id for e in refusals} == {eid}
    # Permitted downloads say they are egress in the audit; the manifest's do not.
    assert all("egress" not in e.detail for e in _audit(a, "extract.download") if e.outcome == "ok")


def test_a_permitted_row_level_download_is_recorded_as_egress(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a, egress=("row-level-download",))
    project = a.client.get(f"/v1/projects/{pid}", headers=a.h("alice", "researcher")).json()
    assert project["approval"]["egress"] == ["row-level-download"]
    eid = _extract(a, pid)
    r = a.client.get(
        f"/v1/projects/{pid}/extracts/{eid}/files/CHILD.parquet", headers=a.h("bob", "researcher")
    )
    assert r.status_code == 200
    (entry,) = [e for e in _audit(a, "extract.download") if e.detail.get("file") == "CHILD.parquet"]
    assert entry.actor == "bob" and entry.detail["egress"] == "row-level-download"
    (approved,) = _audit(a, "project.approval.recorded")
    assert approved.detail["egress"] == ["row-level-download"]


def test_the_approval_names_only_known_egress_types(access: Access) -> None:
    a = access
    body = {
        "datasets": ["case"],
        "variables": [],
        "window_start": "2015-01-01",
        "window_end": "2019-12-31",
        "members": ["alice"],
        "access_until": "2099-01-01",
        "quasi_identifiers": [],
    }
    for egress in (["internet"], ["row-level-download", "row-level-download"]):
        r = a.client.post(
            "/v1/projects/p/approve",
            json={**body, "egress": egress},
            headers=a.h("carol", "approver"),
        )
        assert r.status_code == 422, (egress, r.text)


def test_dummy_data_has_the_extracts_schema_and_none_of_its_values(access: Access) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a, egress=())
    eid = _extract(a, pid)
    h = a.h("bob", "researcher")
    offered = a.client.get(f"/v1/projects/{pid}/workspace/dummy", headers=h).json()
    assert {"CHILD.parquet", "CHILD.csv", "CASE.parquet", "CASE.csv"} <= {
        f["name"] for f in offered["items"]
    }
    with a.ctx.sessions() as s:
        folder = Path(s.get(ExtractRow, eid).directory)  # type: ignore[union-attr]
    real = pq.read_table(folder / "CHILD.parquet")
    r = a.client.get(f"/v1/projects/{pid}/workspace/dummy/CHILD.parquet", headers=h)
    assert r.status_code == 200 and "DUMMY_CHILD.parquet" in r.headers["content-disposition"]
    dummy = pq.read_table(io.BytesIO(r.content))
    assert dummy.schema.names == real.schema.names
    assert [f.type for f in dummy.schema] == [f.type for f in real.schema]
    assert dummy.num_rows == a.ctx.settings.workspace.dummy_rows
    real_values = {v for col in real.columns for v in col.to_pylist() if isinstance(v, str)}
    dummy_ids = {v for v in dummy.column("ALF_E").to_pylist() if v is not None}
    assert dummy_ids and not dummy_ids & real_values
    assert all(v.startswith("DUMMY-") for v in dummy_ids)
    csv = a.client.get(f"/v1/projects/{pid}/workspace/dummy/CASE.csv", headers=h)
    real_header = (folder / "CASE.csv").read_text().splitlines()[0]
    assert csv.status_code == 200 and csv.text.splitlines()[0] == real_header
    assert a.client.get(f"/v1/projects/{pid}/workspace/dummy/x.csv", headers=h).status_code == 404
    downloads = _audit(a, "workspace.dummy.download")
    assert [(e.actor, e.object_id, e.outcome) for e in downloads] == [
        ("bob", "CHILD.parquet", "ok"),
        ("bob", "CASE.csv", "ok"),
        ("bob", "x.csv", "denied"),
    ]
