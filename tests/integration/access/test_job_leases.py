"""Jobs survive a restart of another replica (real PostgreSQL, real sandboxed jobs).

Replica A, a separate process, runs a long job and is killed (SIGKILL: no shutdown, no
goodbye). Replica B is alive and running its own job. Replica C starts (a restart) while
both jobs are unfinished. Only A's job, whose owner's lease expires, is failed, exactly
once and audited once although B and C both sweep; B's job runs on to its end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.access.config import AccessSettings, JobRunnerSettings
from services.access.storage.models import AuditLogRow, JobRow
from tests.integration.access.conftest import Access, serve, settings_for, two_workspaces

REPO = Path(__file__).resolve().parents[3]
LEASE_S = 2.0

# Replica A in its own process: the same database and workspaces; it submits one job, whose
# background task runs it in that process until the process is killed.
REPLICA_A = """
import json, sys
from services.access.config import AccessSettings
from tests.integration.access.conftest import serve
settings = AccessSettings.model_validate(json.loads(sys.argv[1]))
for a in serve(settings):
    a.client.post(
        f"/v1/projects/{sys.argv[2]}/workspace/jobs",
        json={"script": "import time\\ntime.sleep(120)\\n", "name": "on A"},
        headers=a.h("bob", "researcher"),
    )
"""


def _settings(postgres: str, tmp_path: Path) -> AccessSettings:
    base = settings_for(postgres, tmp_path)
    return base.model_copy(update={"job_runner": JobRunnerSettings(lease_s=LEASE_S)})


@pytest.fixture
def postgres(fresh_postgres_db: Callable[[], str]) -> str:
    return fresh_postgres_db()


@pytest.fixture
def replica_b(postgres: str, tmp_path: Path) -> Iterator[Access]:
    yield from serve(_settings(postgres, tmp_path))


def _jobs(a: Access) -> dict[str, JobRow]:
    with a.ctx.sessions() as s:
        return {r.name: r for r in s.execute(select(JobRow)).scalars()}


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _interrupted(a: Access) -> list[dict[str, Any]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.object_id, AuditLogRow.detail).where(
                AuditLogRow.action == "workspace.job.finish"
            )
        ).all()
    out = [{"job": j, **json.loads(d)} for j, d in rows]
    return [d for d in out if d["reason"] == "interrupted"]


def test_a_killed_replicas_job_fails_and_a_live_replicas_job_runs_on(
    replica_b: Access, postgres: str, tmp_path: Path
) -> None:
    b = replica_b
    pid = two_workspaces(b)["a"]
    settings = _settings(postgres, tmp_path)
    dumped = settings.model_dump(mode="json")
    dumped["pseudonym_master_key"] = settings.pseudonym_master_key.get_secret_value()
    replica_a = subprocess.Popen(
        [sys.executable, "-c", REPLICA_A, json.dumps(dumped), pid],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        _until(
            lambda: "on A" in _jobs(b) and _jobs(b)["on A"].state == "running",
            60,
            "A's job to run",
        )
        on_b: dict[str, Any] = {}

        def submit_on_b() -> None:
            r = b.client.post(
                f"/v1/projects/{pid}/workspace/jobs",
                json={"script": "import time\ntime.sleep(12)\nprint('done')\n", "name": "on B"},
                headers=b.h("bob", "researcher"),
            )
            on_b["status"] = r.status_code

        thread = threading.Thread(target=submit_on_b)
        thread.start()
        _until(
            lambda: "on B" in _jobs(b) and _jobs(b)["on B"].state == "running",
            30,
            "B's job to run",
        )
        owner_a = _jobs(b)["on A"].owner
        assert owner_a is not None and owner_a != b.ctx.replica
        assert _jobs(b)["on B"].owner == b.ctx.replica
        print(f"A's and B's jobs running after {time.monotonic() - started:.1f} s")
        replica_a.send_signal(signal.SIGKILL)
        replica_a.wait(timeout=10)

        # A restart (replica C) while both are unfinished: A's lease still holds for now,
        # and B's is renewed; C fails neither at its start.
        for c in serve(_settings(postgres, tmp_path)):
            jobs = _jobs(c)
            assert jobs["on B"].state == "running", jobs["on B"].reason
            # Within a lease and a beat of the kill, A's job is failed by B or C.
            _until(
                lambda c=c: _jobs(c)["on A"].state == "failed",  # type: ignore[misc]
                3 * LEASE_S + 5,
                "A's job",
            )
            failed = _jobs(c)["on A"]
            assert (failed.reason, failed.owner) == ("interrupted", None)
            assert _jobs(c)["on B"].state == "running"
            print(f"A's job failed after {time.monotonic() - started:.1f} s")
            time.sleep(LEASE_S)  # more sweeps by both live replicas: still one audit
            assert [d["job"] for d in _interrupted(c)] == [failed.id]
        thread.join(timeout=60)
        assert on_b == {"status": 202}
        done = _jobs(b)["on B"]
        assert (done.state, done.reason, done.owner) == ("succeeded", None, None)
        assert [d["job"] for d in _interrupted(b)] == [_jobs(b)["on A"].id]
    finally:
        if replica_a.poll() is None:
            replica_a.kill()
            replica_a.wait(timeout=10)
