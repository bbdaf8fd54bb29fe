"""Analysis jobs in the bubblewrap sandbox: a member's script reads the workspace's extract and
writes outputs; it cannot reach the network, the rest of the file system or another
project's data, its limits stop it, and every job is recorded and audited (SQLite and
PostgreSQL as the access database; bubblewrap from scripts/sandbox.sh)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fjo.cli import app as cli_app
from services.access.config import JobSettings, WorkspaceSettings
from services.access.storage.models import AuditLogRow, ExtractRow
from tests.integration.access.conftest import (
    Access,
    cli_through,
    two_workspaces,
    with_workspace,
)

# CPU time well under the deadline: on a loaded machine a CPU second takes several.
LIMITS = JobSettings(cpu_s=2, wall_s=20.0, memory_mb=1024, max_file_mb=8)

ANALYSIS = """
import json, pandas as pd
child = pd.read_parquet("/data/CHILD.parquet")
table = child.groupby("GNDR_CD").size().rename("n").reset_index()
table.to_csv("/output/by_sex.csv", index=False)
print("children", len(child))
"""

# Every attempt to reach past the sandbox, recorded by the job itself.
PROBE = """
import json, os, socket
seen = {}
def attempt(name, fn):
    try:
        fn()
        seen[name] = "allowed"
    except OSError as exc:
        seen[name] = type(exc).__name__
attempt("foreign-extract", lambda: open(FOREIGN, "rb").read(1))
attempt("host-file", lambda: open("/etc/passwd").read(1))
attempt("repository", lambda: open(REPO + "/pyproject.toml").read(1))
attempt("audit-signing-key", lambda: open(KEY, "rb").read(1))
attempt("socket", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("write-data", lambda: open("/data/CHILD.parquet", "ab").write(b"x"))
attempt("write-workspace", lambda: open("/workspace/x", "w").write("x"))
attempt("read-data", lambda: open("/data/CHILD.parquet", "rb").read(4))
os.symlink("/etc/hostname", "/output/link")
json.dump(seen, open("/output/probe.json", "w"))
"""


@pytest.fixture
def access(db_url: str, tmp_path: Path) -> Iterator[Access]:
    """The default job limits (a pandas import alone takes a second of CPU or more)."""
    yield from with_workspace(db_url, tmp_path, WorkspaceSettings())


@pytest.fixture
def tight(db_url: str, tmp_path: Path) -> Iterator[Access]:
    """Small limits, so that each one is reached quickly."""
    yield from with_workspace(db_url, tmp_path, WorkspaceSettings(jobs=LIMITS))


@pytest.fixture
def two(access: Access) -> dict[str, str]:
    return two_workspaces(access)


def _submit(a: Access, pid: str, script: str, who: str = "bob", **kw: Any) -> Any:
    return a.client.post(
        f"/v1/projects/{pid}/workspace/jobs",
        json={"script": script, **kw},
        headers=a.h(who, "researcher"),
    )


def _job(a: Access, pid: str, job_id: str) -> dict[str, Any]:
    """The job after its run (the test client runs background tasks before returning)."""
    r = a.client.get(
        f"/v1/projects/{pid}/workspace/jobs/{job_id}", headers=a.h("bob", "researcher")
    )
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


def _finishes(a: Access) -> list[dict[str, Any]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.object_id, AuditLogRow.outcome, AuditLogRow.detail)
            .where(AuditLogRow.action == "workspace.job.finish")
            .order_by(AuditLogRow.seq)
        ).all()
    return [{"job": j, "outcome": o, **json.loads(d)} for j, o, d in rows]


def test_a_job_reads_the_extract_and_writes_its_outputs(
    access: Access, two: dict[str, str]
) -> None:
    a, pid = access, two["a"]
    r = _submit(a, pid, ANALYSIS, requirements=["pandas"], name="by sex")
    assert r.status_code == 202, r.text
    job = _job(a, pid, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert [o["name"] for o in job["outputs"]] == ["by_sex.csv"]
    assert {i["name"] for i in job["inputs"]} >= {"/data/CHILD.parquet", "/data/CASE.parquet"}
    log = a.client.get(
        f"/v1/projects/{pid}/workspace/jobs/{job['id']}/log", headers=a.h("alice", "researcher")
    )
    assert log.text.strip() == "children 60"
    (finish,) = _finishes(a)
    assert finish["job"] == job["id"] and finish["outcome"] == "ok"
    assert finish["outputs"] == [{"name": "by_sex.csv", "sha256": job["outputs"][0]["sha256"]}]
    with a.ctx.sessions() as s:
        submitted = s.execute(
            select(AuditLogRow.actor, AuditLogRow.detail).where(
                AuditLogRow.action == "workspace.job.submit"
            )
        ).one()
    assert submitted[0] == "bob"
    assert json.loads(submitted[1])["script_sha256"] == job["script_sha256"]


def test_a_job_reaches_no_network_no_host_file_and_no_other_project(
    access: Access, two: dict[str, str]
) -> None:
    a, pid = access, two["a"]
    with a.ctx.sessions() as s:
        foreign = s.get(ExtractRow, two["extract_b"])
        assert foreign is not None and foreign.directory
    path = Path(foreign.directory) / "CHILD.parquet"
    assert path.is_file()
    repo = Path(__file__).resolve().parents[3]
    key = a.ctx.settings.audit_signing_key_file
    assert key is not None and key.is_file()
    script = f"FOREIGN = {str(path)!r}\nREPO = {str(repo)!r}\nKEY = {str(key)!r}\n" + PROBE
    job = _job(a, pid, _submit(a, pid, script).json()["id"])
    assert job["state"] == "succeeded", job
    # The link the job left pointing at a host file was removed, not collected.
    assert [o["name"] for o in job["outputs"]] == ["probe.json"]
    out = Path(a.ctx.settings.extracts.directory) / pid / "jobs" / job["id"] / "output"
    seen = json.loads((out / "probe.json").read_text())
    assert seen.pop("read-data") == "allowed"
    assert all(v != "allowed" for v in seen.values()), seen
    assert seen["socket"] == "OSError" or seen["socket"].endswith("Error")
    assert not (out / "link").exists() and not (out / "link").is_symlink()
    assert _finishes(a)[-1]["dropped"] == 1


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("while True:\n    pass\n", "cpu-limit"),
        ("import time\ntime.sleep(60)\n", "time-limit"),
        ("x = bytearray(2 << 30)\n", "memory-limit"),
        ("open('/output/big', 'wb').write(b'x' * (16 << 20))\n", "file-size-limit"),
        ("raise SystemExit(3)\n", "script-failed"),
    ],
)
def test_a_job_past_its_limits_is_stopped_and_audited(
    tight: Access, script: str, reason: str
) -> None:
    a = tight
    pid = two_workspaces(a)["a"]
    job = _job(a, pid, _submit(a, pid, script).json()["id"])
    assert (job["state"], job["reason"]) == ("failed", reason), job
    (finish,) = _finishes(a)
    assert finish["outcome"] == "failed" and finish["reason"] == reason


def test_requirements_come_from_the_allow_list_and_jobs_stay_in_their_project(
    access: Access, two: dict[str, str]
) -> None:
    a, pid = access, two["a"]
    for requirements in (["requests"], ["pandas==2.0"], ["--index-url=http://x"]):
        r = _submit(a, pid, "print(1)", requirements=requirements)
        assert r.status_code == 422, (requirements, r.text)
    job_id = _submit(a, pid, "print(1)").json()["id"]
    for method, path in (
        ("POST", f"/v1/projects/{pid}/workspace/jobs"),
        ("GET", f"/v1/projects/{pid}/workspace/jobs/{job_id}"),
        ("GET", f"/v1/projects/{pid}/workspace/jobs/{job_id}/log"),
        ("GET", f"/v1/projects/{two['b']}/workspace/jobs/{job_id}"),
    ):
        body = {"script": "print(1)"} if method == "POST" else None
        r = a.client.request(method, path, json=body, headers=a.h("mallory", "researcher"))
        assert r.status_code == 404, (path, r.text)
    with a.ctx.sessions() as s:
        refused = s.execute(
            select(AuditLogRow.outcome).where(AuditLogRow.action == "workspace.job.submit")
        ).scalars()
        assert sorted(refused) == ["denied", "ok", "refused", "refused", "refused"]


def test_fjo_workspace_job_submit_status_and_logs(
    access: Access, two: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a, pid = access, two["a"]
    token = a.h("bob", "researcher")["Authorization"].removeprefix("Bearer ")
    cli_through(a, monkeypatch)
    script = tmp_path / "analysis.py"
    script.write_text(ANALYSIS)
    common = ["--project", pid, "--token", token]
    done = CliRunner().invoke(
        cli_app, ["workspace", "job", "submit", str(script), "-r", "pandas", *common, "--json"]
    )
    assert done.exit_code == 0, done.output
    job = json.loads(done.output)
    assert job["state"] == "succeeded"
    status = CliRunner().invoke(cli_app, ["workspace", "job", "status", job["id"], *common])
    assert status.exit_code == 0 and "succeeded; outputs by_sex.csv" in status.output
    logs = CliRunner().invoke(cli_app, ["workspace", "job", "logs", job["id"], *common])
    assert logs.output.strip() == "children 60"
