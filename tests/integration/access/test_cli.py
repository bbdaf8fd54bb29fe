"""``fjo audit verify`` and ``fjo token`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fjo.cli import app
from services.access.bootstrap import build_context
from services.runtime.auth import DevIssuer
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    settings = settings_for(db_url, tmp_path)
    monkeypatch.setenv("FJO_ACCESS_DATABASE_URL", db_url)
    monkeypatch.setenv("FJO_ENVIRONMENT", "test")
    monkeypatch.setenv("FJO_ACCESS_AUTH__JWKS_URL", settings.auth.jwks_url or "")
    for name in ("pseudonym_master_key", "audit_key", "checkpoint_key"):
        monkeypatch.setenv(f"FJO_ACCESS_{name.upper()}", getattr(settings, name).get_secret_value())
    ctx = build_context(settings)
    for i in range(3):
        with transaction(ctx.sessions) as s:
            ctx.audit.append(s, actor="alice", action="extract.download", detail={"i": i})
    ctx.dispose()
    return db_url


def test_audit_verify_passes_on_an_intact_trail_and_fails_on_a_truncated_one(env: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "OK: 3 entries" in ok.output

    ctx = build_context(settings_for(env, Path("/nonexistent")))
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM access_audit_log WHERE seq = 3"))
    ctx.dispose()
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output and "newest rows were deleted" in bad.output


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
