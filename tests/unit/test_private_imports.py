"""``scripts/private_imports.py`` (run by ``make lint``): another module's private name is
refused however it is imported, and only our own packages' names are judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "private_imports.py"


def check(tmp_path: Path, files: dict[str, str]) -> tuple[int, str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout


def test_a_private_name_from_another_module_is_refused_in_every_spelling(tmp_path: Path) -> None:
    code, out = check(
        tmp_path,
        {
            "fjo/__init__.py": "",
            "fjo/a.py": "from fjo.b import _one\n",
            "fjo/c.py": "from fjo.b import (\n    fine,\n    _two as two,\n)\n",
            "fjo/d.py": "def f():\n    from services.x import _three\n",
            "fjo/e.py": "from .b import _four\n",
        },
    )
    assert code == 1
    for name in ("_one", "_two", "_three", "_four"):
        assert f"private name {name!r}" in out, out
    assert "fjo/c.py:1:" in out and "fjo/d.py:2:" in out


def test_public_names_dunders_and_other_projects_private_names_pass(tmp_path: Path) -> None:
    code, out = check(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/a.py": (
                "from fjo import __version__\n"
                "from fjo.stack.processes import fjo_command\n"
                "from _pytest.outcomes import skip as _skip\n"
            ),
        },
    )
    assert (code, out) == (0, "")
