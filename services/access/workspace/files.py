"""A project's workspace on disk: the extracts built into it, query results, jobs and the
airlock's copies of outputs, under ``<extracts.directory>/<project>/``.

Everything under it was written by access itself, except a job's ``output/`` folder, which
the job wrote: files there are read only as regular files (never through a link) and only
if they still hash to what was recorded when the job ended.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkspacePaths", "collect_regular_files", "read_regular_file", "sha256_of"]


@dataclass(frozen=True, slots=True)
class WorkspacePaths:
    root: Path
    project_id: str

    @property
    def base(self) -> Path:
        return self.root / self.project_id

    def extract(self, extract_id: str) -> Path:
        return self.base / "extracts" / extract_id

    def query_result(self, query_id: str) -> Path:
        return self.base / "queries" / f"{query_id}.parquet"

    def job(self, job_id: str) -> Path:
        return self.base / "jobs" / job_id

    def job_output(self, job_id: str) -> Path:
        return self.job(job_id) / "output"

    def output(self, output_id: str, revision: int) -> Path:
        return self.base / "outputs" / output_id / f"r{revision}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file no larger than ``limit``, opened without
    following a final symbolic link (a job could leave one pointing anywhere on the host)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > limit:
            raise ValueError("file too large")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def collect_regular_files(folder: Path, *, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
    """Every regular file under ``folder`` (relative name, bytes, SHA-256), never following
    links; anything else a job left (links, fifos, sockets, devices) is removed and counted."""
    files: list[dict[str, Any]] = []
    dropped = 0
    for here, dirs, names in os.walk(folder, followlinks=False):
        for d in list(dirs):
            if (Path(here) / d).is_symlink():
                dirs.remove(d)
                os.unlink(Path(here) / d)
                dropped += 1
        for name in sorted(names):
            path = Path(here) / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or len(files) >= limit:
                path.unlink()
                dropped += 1
                continue
            files.append(
                {
                    "name": str(path.relative_to(folder)),
                    "bytes": info.st_size,
                    "sha256": sha256_of(path),
                }
            )
    files.sort(key=lambda f: str(f["name"]))
    return files, dropped
