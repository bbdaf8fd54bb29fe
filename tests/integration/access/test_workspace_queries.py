"""SQL in the workspace (DuckDB, confined): a member queries their own project's extract and
nothing else; file functions, extensions and limits are refused and audited (SQLite and
PostgreSQL as the access database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fjo.cli import app as cli_app
from services.access.config import QuerySettings, WorkspaceSettings
from services.access.storage.models import AuditLogRow
from tests.integration.access.conftest import (
    Access,
    cli_through,
    two_workspaces,
    with_workspace,
)

ALFS = "SELECT DISTINCT ALF_E FROM CHILD WHERE ALF_E IS NOT NULL ORDER BY ALF_E LIMIT 40"
LIMITS = QuerySettings(memory_mb=64, threads=1, timeout_s=1.0, max_rows=40)


@pytest.fixture
def access(db_url: str, tmp_path: Path) -> Iterator[Access]:
    yield from with_workspace(db_url, tmp_path, WorkspaceSettings(query=LIMITS))


@pytest.fixture
def two(access: Access) -> dict[str, str]:
    return two_workspaces(access)


def _query(a: Access, pid: str, who: str, sql: str) -> Any:
    return a.client.post(
        f"/v1/projects/{pid}/workspace/queries",
        json={"sql": sql, "preview": 100},
        headers=a.h(who, "researcher"),
    )


def _audited(a: Access, action: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    with a.ctx.sessions() as s:
        rows = s.execute(
            select(AuditLogRow.actor, AuditLogRow.outcome, AuditLogRow.detail)
            .where(AuditLogRow.action == action)
            .order_by(AuditLogRow.seq)
        ).all()
    return [(actor, outcome, json.loads(detail)) for actor, outcome, detail in rows]


def test_a_member_queries_their_own_workspace(access: Access, two: dict[str, str]) -> None:
    a, pid = access, two["a"]
    ws = a.client.get(f"/v1/projects/{pid}/workspace", headers=a.h("bob", "researcher")).json()
    assert ws["extract_id"] == two["extract_a"] and ws["egress"] == []
    tables = {t["name"]: t for t in ws["tables"]}
    assert {"CHILD", "CASE"} <= set(tables)
    assert "GNDR_CD" in {c["column"] for c in tables["CHILD"]["columns"]}

    sql = "SELECT GNDR_CD, count(*) AS n FROM CHILD GROUP BY GNDR_CD ORDER BY GNDR_CD"
    r = _query(a, pid, "bob", sql)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["state"] == "succeeded" and out["extract_id"] == two["extract_a"]
    assert [c["name"] for c in out["columns"]] == ["GNDR_CD", "n"]
    assert sum(n for _, n in out["preview"]) == tables["CHILD"]["rows"] == 60
    # The result stays in the workspace; reading it again is audited too.
    again = a.client.get(
        f"/v1/projects/{pid}/workspace/queries/{out['id']}", headers=a.h("alice", "researcher")
    ).json()
    assert again["preview"] == out["preview"]
    listed = a.client.get(
        f"/v1/projects/{pid}/workspace/queries", headers=a.h("alice", "researcher")
    ).json()
    assert [q["id"] for q in listed["items"]] == [out["id"]]
    (entry,) = _audited(a, "workspace.query")
    assert entry[0] == "bob" and entry[1] == "ok"
    assert entry[2]["sql_sha256"] == out["sql_sha256"] and entry[2]["rows"] == len(out["preview"])
    assert [e[0] for e in _audited(a, "workspace.query.read")] == ["alice"]


def test_no_one_queries_another_projects_workspace(access: Access, two: dict[str, str]) -> None:
    a = access
    # alice and bob are members of A only; mallory of B only: B's workspace does not exist
    # for them, and A's result ids are not found under B.
    for who, pid in (("alice", two["b"]), ("bob", two["b"]), ("mallory", two["a"])):
        assert _query(a, pid, who, "SELECT count(*) FROM CHILD").status_code == 404
        r = a.client.get(f"/v1/projects/{pid}/workspace", headers=a.h(who, "researcher"))
        assert r.status_code == 404
    own = _query(a, two["a"], "bob", "SELECT count(*) AS n FROM CHILD").json()
    r = a.client.get(
        f"/v1/projects/{two['b']}/workspace/queries/{own['id']}",
        headers=a.h("mallory", "researcher"),
    )
    assert r.status_code == 404
    # Each workspace reads its own extract: the two projects' pseudonyms never meet.
    alf_a = _query(a, two["a"], "bob", ALFS)
    alf_b = _query(a, two["b"], "mallory", ALFS)
    seen_a = {row[0] for row in alf_a.json()["preview"]}
    seen_b = {row[0] for row in alf_b.json()["preview"]}
    assert seen_a and seen_b and not seen_a & seen_b
    # The refused callers ran nothing; each refusal is in the audit trail.
    audited = _audited(a, "workspace.query")
    assert {actor for actor, outcome, _ in audited if outcome == "ok"} == {"bob", "mallory"}
    assert {actor for actor, outcome, _ in audited if outcome == "denied"} == {
        "alice",
        "bob",
        "mallory",
    }


def test_file_functions_extensions_and_limits_are_refused_and_audited(
    access: Access, two: dict[str, str]
) -> None:
    a, pid = access, two["a"]
    with a.ctx.sessions() as s:
        from services.access.storage.models import ExtractRow

        other = s.get(ExtractRow, two["extract_b"])
        assert other is not None and other.directory
        foreign = str(Path(other.directory) / "CHILD.parquet")
    assert Path(foreign).is_file()
    cases = {
        f"SELECT * FROM read_parquet('{foreign}')": "file-access",
        f"SELECT * FROM '{foreign}'": "file-access",
        "SELECT * FROM read_csv('/etc/passwd')": "file-access",
        "SELECT * FROM read_text('/etc/hostname')": "file-access",
        "SELECT * FROM glob('/*')": "file-access",
        "SELECT * FROM query('SELECT 1')": "file-access",
        "INSTALL httpfs": "extension",
        "LOAD httpfs": "extension",
        f"COPY CHILD TO '{foreign}.copy'": "statement",
        f"ATTACH '{foreign}.db' AS other": "statement",
        "SET enable_external_access = true": "statement",
        "SELECT 1; SELECT 2": "statement",
        "SELECT * FROM range(41)": "row-limit",
        "SELECT sum(hash(a.range * b.range)) FROM range(1000000) a, range(1000000) b": "time-limit",
        "SELECT string_agg(repeat('x', 1000), ',') FROM range(1000000)": "memory-limit",
        "SELECT * FROM NO_SUCH_TABLE": "invalid",
    }
    for sql, reason in cases.items():
        r = _query(a, pid, "bob", sql)
        assert r.status_code == 422, (sql, r.text)
        assert r.json()["reason"] == reason, (sql, r.json())
    assert not Path(f"{foreign}.copy").exists() and not Path(f"{foreign}.db").exists()
    audited = _audited(a, "workspace.query")
    assert [d["reason"] for _, outcome, d in audited if outcome == "refused"] == list(
        cases.values()
    )
    listed = a.client.get(
        f"/v1/projects/{pid}/workspace/queries", headers=a.h("bob", "researcher")
    ).json()
    assert [q["reason"] for q in listed["items"]] == list(cases.values())
    # Within the limits the same workspace still answers.
    assert _query(a, pid, "bob", "SELECT * FROM range(40)").status_code == 201


def test_fjo_workspace_query_prints_the_rows(
    access: Access, two: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, pid = access, two["a"]
    token = a.h("bob", "researcher")["Authorization"].removeprefix("Bearer ")
    cli_through(a, monkeypatch)
    sql = 'SELECT LAW_TYPE, count(*) AS n FROM "CASE" GROUP BY LAW_TYPE'
    args = ["workspace", "query", sql, "--project", pid, "--token", token]
    result = CliRunner().invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["preview"] == [["public", 12]]
    refused = CliRunner().invoke(
        cli_app, ["workspace", "query", "LOAD httpfs", "--project", pid, "--token", token]
    )
    assert refused.exit_code == 2 and "extension" in refused.output


def test_fjo_workspace_dummy_lists_and_saves_dummy_tables(
    access: Access, two: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a, pid = access, two["a"]
    token = a.h("bob", "researcher")["Authorization"].removeprefix("Bearer ")
    cli_through(a, monkeypatch)
    listed = CliRunner().invoke(cli_app, ["workspace", "dummy", "--project", pid, "--token", token])
    assert listed.exit_code == 0 and "CHILD.csv\t200 rows" in listed.output
    target = tmp_path / "child.csv"
    saved = CliRunner().invoke(
        cli_app,
        [
            "workspace",
            "dummy",
            "CHILD.csv",
            "--out",
            str(target),
            "--project",
            pid,
            "--token",
            token,
        ],
    )
    assert saved.exit_code == 0, saved.output
    assert len(target.read_text().splitlines()) == 201
