"""``fjo audit ...`` and ``fjo token`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fjo.cli import app
from services.access.bootstrap import build_context
from services.access.domain.audit import dev_signing_key, public_key_pem
from services.runtime.auth import DevIssuer
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    settings = settings_for(db_url, tmp_path)
    monkeypatch.setenv("FJO_ACCESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FJO_ENVIRONMENT", "test")
    monkeypatch.setenv("FJO_ACCESS_AUTH__JWKS_URL", settings.auth.jwks_url or "")
    monkeypatch.setenv(
        "FJO_ACCESS_PSEUDONYM_MASTER_KEY", settings.pseudonym_master_key.get_secret_value()
    )
    monkeypatch.setenv("FJO_ACCESS_AUDIT_SIGNING_KEY_FILE", str(settings.audit_signing_key_file))
    ctx = build_context(settings)
    ctx.audit.open(ctx.sessions)
    for i in range(3):
        with transaction(ctx.sessions) as s:
            ctx.audit.append(s, actor="alice", action="extract.download", detail={"i": i})
    ctx.dispose()
    return db_url


def _cut_the_tail(db_url: str, tmp_path: Path) -> None:
    """As the tables' owner: triggers off, newest row and its checkpoint gone, head wound back."""
    ctx = build_context(settings_for(db_url, tmp_path))
    with ctx.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for t in ("access_audit_log", "access_audit_head", "access_audit_checkpoints"):
                conn.execute(text(f"ALTER TABLE {t} DISABLE TRIGGER USER"))
        else:
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            for name in list(names.scalars()):
                conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text("DELETE FROM access_audit_log WHERE seq = 4"))
        conn.execute(text("DELETE FROM access_audit_checkpoints WHERE seq = 4"))
        h = conn.execute(text("SELECT hash FROM access_audit_log WHERE seq = 3")).scalar_one()
        conn.execute(text("UPDATE access_audit_head SET seq = 3, hash = :h"), {"h": h})
    ctx.dispose()


def test_audit_verify_passes_on_an_intact_trail_and_fails_on_a_truncated_one(
    env: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "OK: 4 entries, 4 checkpoints" in ok.output  # the genesis entry and three more

    exported = tmp_path / "outside" / "checkpoints.jsonl"
    exported.parent.mkdir()
    r = runner.invoke(app, ["audit", "export-checkpoints", "--out", str(exported)])
    assert r.exit_code == 0, r.output
    assert len(exported.read_text().splitlines()) == 4
    r = runner.invoke(app, ["audit", "export-checkpoints", "--out", str(exported)])
    assert len(exported.read_text().splitlines()) == 4  # only newer ones are appended

    _cut_the_tail(env, tmp_path)
    inside = runner.invoke(app, ["audit", "verify"])
    assert inside.exit_code == 0, inside.output  # consistent in itself: rows, head, store
    bad = runner.invoke(app, ["audit", "verify", "--checkpoints", str(exported)])
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output and "newest rows were deleted" in bad.output
    assert "checkpoint at row 4 was exported but is gone from the store" in bad.output


def test_audit_verify_shows_the_rows_checked_on_stderr_and_the_result_on_stdout(
    env: str,
) -> None:
    ok = CliRunner().invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    (bar,) = [line for line in ok.stderr.splitlines() if line.startswith("verify")]
    assert "4/4" in bar  # every row of the chain, up to the head
    assert ok.stdout.strip() == "OK: 4 entries, 4 checkpoints"
    quiet = CliRunner().invoke(app, ["audit", "verify", "--no-progress"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    as_json = CliRunner().invoke(app, ["audit", "verify", "--json"])
    assert json.loads(as_json.stdout)["ok"] is True and as_json.stderr == ""


def test_a_third_party_verifies_with_the_public_key_alone(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    public = tmp_path / "audit.pub"
    r = runner.invoke(app, ["audit", "export-key", "--out", str(public)])
    assert r.exit_code == 0, r.output
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")

    # The auditor has the database copy and the public key, not the private key.
    monkeypatch.delenv("FJO_ACCESS_AUDIT_SIGNING_KEY_FILE")
    ok = runner.invoke(app, ["audit", "verify", "--json", "--public-key", str(public)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True

    # A trail checked against the publicly known development key proves nothing outside dev.
    dev = tmp_path / "dev.pub"
    dev.write_text(public_key_pem(dev_signing_key().public_key()))
    refused = runner.invoke(app, ["audit", "verify", "--json", "--public-key", str(dev)])
    assert refused.exit_code == 1
    problems = json.loads(refused.output)["problems"]
    assert any("development key" in p for p in problems)
    assert any("not signed by the service's key" in p for p in problems)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    key = tmp_path / "audit-signing.pem"
    r = runner.invoke(app, ["audit", "keygen", "--out", str(key)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["audit", "keygen", "--out", str(key)])
    assert again.exit_code == 2


def test_grants_give_the_service_role_only_insert_on_the_audit_tables() -> None:
    r = CliRunner().invoke(app, ["audit", "grants", "--role", "fjo_access"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert (
        'GRANT SELECT, INSERT ON access_audit_log, access_audit_checkpoints TO "fjo_access";'
        in (lines)
    )
    assert 'GRANT SELECT, UPDATE ON access_audit_head TO "fjo_access";' in lines
    granted = [line for line in lines if line.startswith("GRANT") and "access_audit_log" in line]
    assert all("UPDATE" not in g and "DELETE" not in g for g in granted)
    bad = CliRunner().invoke(app, ["audit", "grants", "--role", "x; DROP TABLE y"])
    assert bad.exit_code != 0


def test_fjo_token_mints_a_token_the_dev_issuer_verifies(tmp_path: Path) -> None:
    key = tmp_path / "dev-issuer.pem"
    result = CliRunner().invoke(
        app,
        ["token", "--subject", "alice", "--role", "researcher", "--role", "admin",
         "--audience", "fjo-access", "--key-file", str(key)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    issuer = DevIssuer.from_file(key, issuer="https://dev.fjo.invalid", create=False)
    principal = issuer.verifier(audience="fjo-access").verify(result.output.strip())
    assert principal.subject == "alice"
    assert principal.roles == frozenset({"researcher", "admin"})
