"""``fjo synth`` writes the world a partner would send, and the truth."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fjo.cli import app


def test_fjo_synth_writes_every_feed_the_truth_and_the_invalid_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(tmp_path), "--small", "--seed", "3"])
    assert result.exit_code == 0, result.output
    feeds = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*.ndjson"))
    assert feeds == sorted(
        ["wds/spine-person.ndjson"]
        + [
            f"{s}/{k}.ndjson"
            for s in ("cafcass-cymru", "cafcass-england")
            for k in ("case", "child", "adult-party", "party-child-relationship", "hearing")
        ]
    )
    summary = json.loads((tmp_path / "world.json").read_text())
    assert summary["config"]["seed"] == 3 and summary["config"]["spine_size"] == 400
    assert (tmp_path / "truth.csv").read_text().startswith("source,record_type,record_id,")
    assert json.loads((tmp_path / "invalid.json").read_text())
    again = tmp_path / "again"
    CliRunner().invoke(app, ["synth", str(again), "--small", "--seed", "3"])
    for feed in feeds:
        assert (again / feed).read_bytes() == (tmp_path / feed).read_bytes()
