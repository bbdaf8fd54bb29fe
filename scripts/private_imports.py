"""No module imports another module's private name: ``make lint`` runs this.

A name that starts with one underscore (``_svg_bars``, ``_fjo_command``) is its module's own
business; another module (a test included) that needs it needs a public name instead. Checked
for every import of our packages, at any depth of the file (function-level imports too), from
the parsed source, so a multi-line or aliased import cannot slip through. Private *modules*
(``bench/_common.py``) are import-linter's ``private_modules`` contract.

    python scripts/private_imports.py [--root DIR] [PATH ...]   # default: the repository
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "services", "synth", "fjo", "bench", "deploy", "tests")
"""Our top-level packages; imports of anything else (pytest's own, say) are not ours to judge."""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def violations(path: Path, root: Path = ROOT) -> Iterator[str]:
    """``file:line: message`` for each private name ``path`` imports from another module."""
    importer = _module_of(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _resolve(importer, path.name == "__init__.py", node.level, node.module)
        if source.split(".")[0] not in PACKAGES or source == importer:
            continue
        for alias in node.names:
            if _private(alias.name):
                where = f"{path.relative_to(root)}:{node.lineno}"
                yield f"{where}: imports private name {alias.name!r} from {source}"


def main(argv: list[str]) -> int:
    root = ROOT
    if argv[:1] == ["--root"]:
        root, argv = Path(argv[1]).resolve(), argv[2:]
    paths = [Path(a).resolve() for a in argv] or [root / p for p in PACKAGES]
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    # Virtual environments are not ours: .venv, and the benchmarks' own (bench/.venv-clkhash).
    ours = [f for f in files if not any(part.startswith(".venv") for part in f.parts)]
    found = [v for f in ours for v in violations(f, root)]
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} import(s) of another module's private name: give it a public name")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
