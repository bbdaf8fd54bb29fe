"""The airlock: ACRO checks an output computed from a workspace's data; a failing one leaves
only with its author's exception and two independent checkers, a clean one with two
checkers; returned outputs come back as new revisions; everything is audited (SQLite and
PostgreSQL as the access database; ACRO runs in the job sandbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fjo.cli import app as cli_app
from services.access.storage.models import AuditLogRow
from tests.integration.access.conftest import (
    CHECKER_1,
    CHECKER_2,
    Access,
    active_project,
    cli_through,
    family_court_data,
    register,
)

SMALL_GROUP = """
import pandas as pd
child = pd.read_parquet("/data/CHILD.parquet")
child["GROUP"] = ["small" if i < 3 else "large" for i in range(len(child))]
child[["GROUP", "GNDR_CD"]].to_csv("/output/groups.csv", index=False)
open("/output/notes.txt", "w").write("a free-form note")
"""


def _world(a: Access) -> str:
    a.seed(*family_court_data())
    register(a, "alice", "bob", "mallory")
    pid = active_project(a, egress=())
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("bob", "researcher"))
    assert r.status_code == 202, r.text
    return pid


def _submit(a: Access, pid: str, body: dict[str, Any], who: str = "bob") -> Any:
    return a.client.post(
        f"/v1/projects/{pid}/workspace/outputs", json=body, headers=a.h(who, "researcher")
    )


def _review(a: Access, pid: str, oid: str, checker: tuple[str, str], decision: str) -> Any:
    return a.client.post(
        f"/v1/projects/{pid}/workspace/outputs/{oid}/reviews",
        json={"decision": decision, "comment": f"{decision} by {checker[0]}"},
        headers=a.h(*checker),
    )


def _actions(a: Access, oid: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.action, AuditLogRow.actor, AuditLogRow.detail)
            .where(AuditLogRow.object_id == oid, AuditLogRow.outcome == "ok")
            .order_by(AuditLogRow.seq)
        ).all()
    return [(action, actor, json.loads(detail)) for action, actor, detail in rows]


def test_a_job_table_with_a_small_cell_needs_an_exception_and_two_checkers(
    access: Access,
) -> None:
    a = access
    pid = _world(a)
    job = a.client.post(
        f"/v1/projects/{pid}/workspace/jobs",
        json={"script": SMALL_GROUP, "requirements": ["pandas"]},
        headers=a.h("bob", "researcher"),
    ).json()
    job = a.client.get(
        f"/v1/projects/{pid}/workspace/jobs/{job['id']}", headers=a.h("bob", "researcher")
    ).json()
    assert job["state"] == "succeeded", job
    r = _submit(
        a,
        pid,
        {
            "title": "Children by group",
            "kind": "table",
            "source": {"job": job["id"], "file": "groups.csv"},
            "spec": {"index": ["GROUP"]},
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    oid = out["id"]
    # ACRO's threshold check flags the cell of 3 (its own record of which cell and why).
    assert out["status"] == "fail" and "MinimumThresholdCheck: fail" in out["summary"]
    assert out["checks"]["type"] == "table" and {f["name"] for f in out["files"]} >= {
        "results.json"
    }
    base = f"/v1/projects/{pid}/workspace/outputs/{oid}"
    table = next(f["name"] for f in out["files"] if f["name"].endswith(".csv"))
    # Not without an exception; not by the author; not out before release.
    assert _review(a, pid, oid, CHECKER_1, "approve").status_code == 409
    assert _review(a, pid, oid, ("bob", "researcher"), "approve").status_code == 403
    r = a.client.get(f"{base}/files/{table}", headers=a.h("bob", "researcher"))
    assert r.status_code == 409
    r = a.client.post(
        f"{base}/exception",
        json={"reason": "the small group is a test artefact"},
        headers=a.h("alice", "researcher"),
    )
    assert r.status_code == 403  # alice is a member, not its author
    r = a.client.post(
        f"{base}/exception",
        json={"reason": "the small group is a test artefact"},
        headers=a.h("bob", "researcher"),
    )
    assert r.status_code == 200 and r.json()["exception"]
    # A checker reads what they judge before release.
    assert a.client.get(f"{base}/files/{table}", headers=a.h(*CHECKER_1)).status_code == 200
    assert _review(a, pid, oid, CHECKER_1, "approve").json()["state"] == "submitted"
    assert _review(a, pid, oid, CHECKER_1, "approve").status_code == 409  # once each
    released = _review(a, pid, oid, CHECKER_2, "approve").json()
    assert released["state"] == "released" and released["approvals"] == ["dave", "erin"]
    r = a.client.get(f"{base}/files/{table}", headers=a.h("bob", "researcher"))
    assert r.status_code == 200 and b"small" in r.content
    # Nobody outside the project sees it.
    r = a.client.get(base, headers=a.h("mallory", "researcher"))
    assert r.status_code == 404
    actions = _actions(a, oid)
    assert [(x, who) for x, who, _ in actions] == [
        ("airlock.submit", "bob"),
        ("airlock.exception", "bob"),
        ("airlock.download", "dave"),
        ("airlock.review", "dave"),
        ("airlock.review", "erin"),
        ("airlock.release", "erin"),
        ("airlock.download", "bob"),
    ]
    assert actions[0][2]["status"] == "fail"
    assert actions[5][2]["checkers"] == ["dave", "erin"] and actions[5][2]["exception"]

    # A free-form file is never passed automatically: always a person's judgement.
    r = _submit(
        a,
        pid,
        {
            "title": "Notes",
            "kind": "file",
            "source": {"job": job["id"], "file": "notes.txt"},
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "review"


def test_a_clean_query_table_is_returned_resubmitted_and_released(access: Access) -> None:
    a = access
    pid = _world(a)
    query = a.client.post(
        f"/v1/projects/{pid}/workspace/queries",
        json={"sql": 'SELECT LAW_TYPE FROM "CASE"'},
        headers=a.h("bob", "researcher"),
    ).json()
    r = _submit(
        a,
        pid,
        {
            "title": "Cases by law type",
            "kind": "table",
            "source": {"query": query["id"]},
            "spec": {"index": ["LAW_TYPE"]},
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    oid = out["id"]
    assert out["status"] == "pass", out["summary"]
    base = f"/v1/projects/{pid}/workspace/outputs/{oid}"
    assert _review(a, pid, oid, CHECKER_1, "return").json()["state"] == "returned"
    assert _review(a, pid, oid, CHECKER_2, "approve").status_code == 409  # with its author
    r = a.client.post(
        f"{base}/resubmit", json={"comment": "same table"}, headers=a.h("bob", "researcher")
    )
    assert r.status_code == 200, r.text
    assert (r.json()["revision"], r.json()["state"]) == (2, "submitted")
    assert _review(a, pid, oid, CHECKER_1, "approve").json()["state"] == "submitted"
    assert _review(a, pid, oid, CHECKER_2, "approve").json()["state"] == "released"
    queue = a.client.get("/v1/workspace/outputs", headers=a.h(*CHECKER_1)).json()
    assert oid not in {o["id"] for o in queue["items"]}


def test_outputs_come_only_from_the_projects_own_workspace(access: Access) -> None:
    a = access
    pid = _world(a)
    other = active_project(a, "mallory", (), title="Other", egress=())
    a.client.post(f"/v1/projects/{other}/extracts", headers=a.h("mallory", "researcher"))
    foreign = a.client.post(
        f"/v1/projects/{other}/workspace/queries",
        json={"sql": "SELECT GNDR_CD FROM CHILD"},
        headers=a.h("mallory", "researcher"),
    ).json()
    spec = {"title": "t", "kind": "table", "spec": {"index": ["GNDR_CD"]}}
    for source in (
        {"query": foreign["id"]},
        {"job": "no-such-job", "file": "x.csv"},
        {"table": "NO_SUCH_TABLE"},
    ):
        r = _submit(a, pid, {**spec, "source": source})
        assert r.status_code == 422, (source, r.text)
    r = _submit(a, pid, {**spec, "source": {"table": "CHILD"}, "spec": {"index": ["x;y"]}})
    assert r.status_code == 422


def test_fjo_workspace_outputs_submit_review_and_download(
    access: Access, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a = access
    pid = _world(a)
    cli_through(a, monkeypatch)

    def cli(who: tuple[str, str], *args: str) -> Any:
        token = a.h(*who)["Authorization"].removeprefix("Bearer ")
        result = CliRunner().invoke(
            cli_app, ["workspace", *args, "--project", pid, "--token", token]
        )
        assert result.exit_code == 0, result.output
        return result.output

    script = tmp_path / "note.py"
    script.write_text("open('/output/note.txt', 'w').write('n = 60')\n")
    job = json.loads(cli(("bob", "researcher"), "job", "submit", str(script), "--json"))
    line = cli(
        ("bob", "researcher"),
        "outputs",
        "submit",
        "--title",
        "A note",
        "--kind",
        "file",
        "--job",
        job["id"],
        "--file",
        "note.txt",
    )
    oid = line.split()[0]
    assert "submitted review" in line
    cli(CHECKER_1, "outputs", "review", oid, "approve")
    assert "released" in cli(CHECKER_2, "outputs", "review", oid, "approve")
    assert oid in cli(("alice", "researcher"), "outputs", "list")
    target = tmp_path / "note.txt"
    cli(("alice", "researcher"), "outputs", "download", oid, "note.txt", "--out", str(target))
    assert target.read_text() == "n = 60"
