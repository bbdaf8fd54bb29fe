"""End of project: a closed project's workspace is deleted after its retention period, with a
signed deletion certificate in the audit trail (docs/access.md, "Retention").

The story on SQLite and PostgreSQL: a project with an extract, a query result, a job's file
and a released output closes; the retention job run before the period deletes nothing; run
after it, the workspace is gone but for the released output, the extract's, query's and
unreleased output's rows are gone, and one certificate lists every file with its SHA-256 and
the rows per table; ``fjo audit verify`` accepts the trail; a third run does nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fjo.cli import app
from services.access.retention import CERTIFICATE_ACTION, run_retention
from services.access.storage.models import (
    AirlockOutputRow,
    AuditLogRow,
    ExtractRow,
    ProjectRow,
    WorkspaceQueryRow,
)
from services.access.workspace.files import WorkspacePaths
from services.runtime.db import transaction
from tests.integration.access.conftest import (
    CHECKER_1,
    Access,
    active_project,
    cli_env,
    family_court_data,
    note_job,
    note_output,
    register,
)


def _certificates(a: Access, pid: str) -> list[dict[str, Any]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.detail).where(
                AuditLogRow.action == CERTIFICATE_ACTION, AuditLogRow.project_id == pid
            )
        ).scalars()
        return [json.loads(d) for d in rows]


def _count(a: Access, model: Any, pid: str) -> int:
    with a.ctx.sessions() as s:
        return int(
            s.execute(
                select(func.count()).select_from(model).where(model.project_id == pid)
            ).scalar_one()
        )


def _workspace_with_everything(a: Access) -> tuple[str, str, Path]:
    """An active project with an extract, a query result, a job's files, an output waiting
    for a second checker, and a released airlock output on disk; closed. (pid, released id,
    base)."""
    a.seed(*family_court_data())
    register(a, "alice", "bob")
    pid = active_project(a, retention_days=30)
    bob = a.h("bob", "researcher")
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=bob)
    assert r.status_code == 202, r.text
    r = a.client.post(
        f"/v1/projects/{pid}/workspace/queries",
        json={"sql": "SELECT GNDR_CD, count(*) AS n FROM CHILD GROUP BY GNDR_CD"},
        headers=bob,
    )
    assert r.status_code == 201, r.text
    note_output(a, pid, note_job(a, pid), CHECKER_1)  # waits for a second checker
    paths = WorkspacePaths(a.ctx.settings.extracts.directory, pid)
    # A job's output and a released airlock output, as the sandbox and the airlock leave them
    # (running ACRO in the sandbox is the airlock's tests' business).
    job_file = paths.job_output("job-1") / "table.csv"
    job_file.parent.mkdir(parents=True)
    job_file.write_text("sex,n\n1,41\n2,19\n")
    released = paths.output("out-released", 2) / "table.csv"
    released.parent.mkdir(parents=True)
    released.write_text("sex,n\n1,40\n2,20\n")
    (paths.output("out-released", 1) / "table.csv").parent.mkdir(parents=True)
    (paths.output("out-released", 1) / "table.csv").write_text("sex,n\n1,41\n2,19\n")
    with transaction(a.ctx.sessions) as s:
        s.add(
            AirlockOutputRow(
                id="out-released",
                project_id=pid,
                author="bob",
                title="Children by sex",
                kind="table",
                source={"job": "job-1", "file": "table.csv"},
                preset="threshold-10",
                state="released",
                revision=2,
                status="pass",
                released_at=datetime.now(UTC),
            )
        )
    r = a.client.post(f"/v1/projects/{pid}/close", headers=a.h("alice", "researcher"))
    assert r.status_code == 200 and r.json()["state"] == "closed", r.text
    return pid, "out-released", paths.base


def test_a_closed_projects_workspace_goes_after_its_period_with_one_certificate(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = access
    pid, released_id, base = _workspace_with_everything(a)
    before = {
        p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in base.rglob("*")
        if p.is_file()
    }
    kept = f"outputs/{released_id}/r2/table.csv"
    assert kept in before and any(p.startswith("extracts/") for p in before)
    assert any(p.startswith("queries/") for p in before)
    with a.ctx.sessions() as s:
        closed_at = s.get(ProjectRow, pid).closed_at  # type: ignore[union-attr]
    assert closed_at is not None

    # Before the approval's 30 days: nothing deleted, nothing certified.
    early = run_retention(a.ctx, now=closed_at + timedelta(days=29))
    assert pid in early.waiting and early.deleted == {}
    assert early.waiting[pid] == closed_at + timedelta(days=30)
    assert {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()} == set(before)
    assert _certificates(a, pid) == [] and _count(a, ExtractRow, pid) == 1

    # After them: everything but the released output is gone, rows and files.
    late = run_retention(a.ctx, now=closed_at + timedelta(days=31))
    assert late.deleted == {pid: len(before) - 1}
    left = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
    assert left == {kept}
    assert not (base / "extracts").exists() and not (base / "queries").exists()
    assert _count(a, ExtractRow, pid) == 0 and _count(a, WorkspaceQueryRow, pid) == 0
    with a.ctx.sessions() as s:
        ids = s.execute(
            select(AirlockOutputRow.id).where(AirlockOutputRow.project_id == pid)
        ).scalars()
        assert list(ids) == [released_id]  # the pending output went, the released one stays

    [certificate] = _certificates(a, pid)
    assert {f["path"]: f["sha256"] for f in certificate["files"]} == {
        p: h for p, h in before.items() if p != kept
    }
    assert certificate["rows"]["access_extracts"] == 1
    assert certificate["rows"]["access_workspace_queries"] == 1
    assert certificate["rows"]["access_jobs"] == 1
    assert certificate["rows"]["access_airlock_outputs"] == 1
    assert certificate["rows"]["access_airlock_reviews"] == 1
    assert certificate["kept"] == {"released_outputs": [released_id]}
    assert certificate["rule"]["period_days"] == 30
    assert certificate["rule"]["period_from"] == "approval"
    assert certificate["process"]["host"] and certificate["process"]["version"]
    assert certificate["deleted_at"] == (closed_at + timedelta(days=31)).isoformat()

    # Again: nothing more, no second certificate.
    again = run_retention(a.ctx, now=closed_at + timedelta(days=60))
    assert again.deleted == {} and again.finished == [] and again.waiting == {}
    assert len(_certificates(a, pid)) == 1

    # The trail, certificate included, verifies (signed like every entry).
    cli_env(a, monkeypatch)
    verified = CliRunner().invoke(app, ["audit", "verify", "--json", "--no-progress"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["ok"] is True


def test_the_cli_deletes_a_due_workspace_once(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = access
    a.seed(*family_court_data())
    register(a, "alice")
    pid = active_project(a, members=(), retention_days=0)
    r = a.client.post(f"/v1/projects/{pid}/extracts", headers=a.h("alice", "researcher"))
    assert r.status_code == 202, r.text
    assert a.client.post(f"/v1/projects/{pid}/close", headers=a.h("alice", "researcher")).is_success
    base = WorkspacePaths(a.ctx.settings.extracts.directory, pid).base
    assert any(base.rglob("*.parquet"))
    cli_env(a, monkeypatch)
    runner = CliRunner()
    # A pod without the API's workspace volume must not certify a deletion it cannot do.
    monkeypatch.setenv("FJO_ACCESS_EXTRACTS__DIRECTORY", str(base.parent.parent / "not-mounted"))
    unmounted = runner.invoke(app, ["access", "retention", "run"])
    assert unmounted.exit_code == 1 and "workspaces' folder" in unmounted.output
    assert _certificates(a, pid) == [] and base.exists()
    monkeypatch.setenv("FJO_ACCESS_EXTRACTS__DIRECTORY", str(a.ctx.settings.extracts.directory))
    first = runner.invoke(app, ["access", "retention", "run", "--json"])
    assert first.exit_code == 0, first.output
    assert pid in json.loads(first.output)["deleted"]
    assert not base.exists()
    second = runner.invoke(app, ["access", "retention", "run", "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["deleted"] == {}
    assert len(_certificates(a, pid)) == 1
