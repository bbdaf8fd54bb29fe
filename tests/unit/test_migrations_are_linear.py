"""Every service's Alembic history is one line: unique revision ids and a single head. Two
branches each adding a "0003" once merged into two heads sharing an id, and Alembic then kept
only one of them, silently skipping the other's tables."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[2] / "services"
DIRS = sorted(p.parent for p in ROOT.glob("*/*migrations/env.py"))


def test_every_service_keeps_its_migrations() -> None:
    assert {d.parent.name for d in DIRS} >= {"ingest", "pseudonymise", "link", "access", "portal"}


@pytest.mark.parametrize("folder", DIRS, ids=lambda d: f"{d.parent.name}/{d.name}")
def test_revisions_are_unique_and_end_in_one_head(folder: Path) -> None:
    ids = []
    for script in sorted((folder / "versions").glob("*.py")):
        text = script.read_text()
        line = next(x for x in text.splitlines() if x.startswith("revision = "))
        ids.append(line.split("=", 1)[1].strip().strip("\"'"))
    assert len(ids) == len(set(ids)), f"{folder}: a revision id is used twice: {sorted(ids)}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        heads = ScriptDirectory(str(folder)).get_heads()
    assert len(heads) == 1, f"{folder}: {len(heads)} heads {heads}"
