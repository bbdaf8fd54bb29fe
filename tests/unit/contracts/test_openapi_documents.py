"""The committed OpenAPI documents (contracts/openapi/) are what the APIs serve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from fjo.openapi import OPENAPI_DIR, api_services, build_api, drift, main, render


def test_committed_openapi_documents_match_the_apis() -> None:
    problems = drift(OPENAPI_DIR)
    assert not problems, "regenerate with: python -m fjo.openapi\n" + "\n".join(problems)


def test_there_is_one_document_per_api_and_none_for_the_portal() -> None:
    assert set(render()) == {f"{service}.json" for service in api_services()}
    assert {"ingest", "link", "access"} <= set(api_services())
    assert "portal" not in api_services()


def test_generation_is_deterministic() -> None:
    assert render() == render()


def test_a_committed_document_is_the_one_the_running_api_serves(tmp_path: Path) -> None:
    served = TestClient(build_api("link", tmp_path)).get("/openapi.json").json()
    assert served == json.loads((OPENAPI_DIR / "link.json").read_text())


def test_check_mode_exits_non_zero_and_names_the_drifted_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--directory", str(tmp_path)]) == 0
    (tmp_path / "ingest.json").write_text("{}\n")
    (tmp_path / "gone.json").write_text("{}\n")
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "out of date: ingest.json" in err and "stale): gone.json" in err
    assert main(["--directory", str(tmp_path)]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 0
    assert not (tmp_path / "gone.json").exists()


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fjo.openapi", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
