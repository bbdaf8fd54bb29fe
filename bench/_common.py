"""Helpers every benchmark shares: where results go and how they are written."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "environment", "write_result"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    """What the figures depend on: machine and interpreter (to compare runs fairly)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
    }


def write_result(name: str, payload: dict[str, Any], directory: Path | None = None) -> Path:
    """Write ``<name>-<UTC timestamp>.json`` and ``<name>-latest.json``; return the first."""
    out_dir = directory or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(text)
    (out_dir / f"{name}-latest.json").write_text(text)
    return path
