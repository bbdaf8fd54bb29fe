"""Helpers every benchmark shares: where results go and how they are written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "environment", "local_service", "run_measured", "write_result"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VAR = Path(__file__).resolve().parents[1] / "var"


def local_service(variables: Sequence[str], recorded: str) -> str | None:
    """The address of a local Kafka or PostgreSQL: the first of the environment ``variables``
    that is set, else what ``make services-up`` recorded in ``var/<recorded>``, else None."""
    for var in variables:
        if os.environ.get(var):
            return os.environ[var]
    path = VAR / recorded
    return path.read_text().strip() if path.exists() else None


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


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: Sequence[str], *, interval_s: float = 0.2) -> dict[str, float]:
    """Run ``cmd`` to completion; its wall time and the peak memory of its process tree.

    Memory is the proportional set size (PSS) summed over the process and its children,
    sampled every ``interval_s``: pages shared copy-on-write between forked workers count
    once, pages a worker copied count for it, so one process and a pool of forks are
    compared fairly. Raises ``CalledProcessError`` if the command fails."""
    t = time.perf_counter()
    proc = subprocess.Popen(list(cmd))
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval_s):
            peak = max(peak, sum(_pss_kib(p) for p in _tree(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    done.set()
    sampler.join()
    if rc:
        raise subprocess.CalledProcessError(rc, list(cmd))
    return {"wall_s": round(time.perf_counter() - t, 2), "peak_pss_gib": round(peak / 2**20, 2)}
