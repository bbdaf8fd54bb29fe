"""Snapshots of the spine view: the index's arrays at a log position, in a folder of files.

A replica starts from the newest snapshot its model can use (same key layout and blocking
rules) and applies the log from the snapshot's position: seconds, instead of reading and
parsing every spine version. The arrays are memory-mapped, so replicas that share the
folder on one machine share one copy in the page cache.

A snapshot is written to a temporary folder and renamed into place, so a reader never sees
half of one; if another replica already wrote one at the same position, that one is kept.
The newest ``keep`` are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from services.link.domain import LinkageModel, SpineIndex

__all__ = ["Snapshots"]

log = logging.getLogger("fjo.link")


class Snapshots:
    """The snapshot folders under one directory."""

    def __init__(self, folder: Path, *, keep: int = 2, min_rows: int = 50_000) -> None:
        self.folder = folder
        self.keep = keep
        self.min_rows = min_rows
        """Versions added since the last snapshot before a new one is worth writing."""

    def _all(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            (p for p in self.folder.iterdir() if p.name.startswith("spine-") and p.is_dir()),
            reverse=True,
        )

    def latest(self, model: LinkageModel) -> SpineIndex | None:
        """The newest snapshot ``model`` can use, loaded (memory-mapped), or None."""
        for path in self._all():
            try:
                return self.load(path, model)
            except (ValueError, OSError, KeyError) as exc:
                log.info("snapshot skipped", extra={"snapshot": path.name, "why": str(exc)})
        return None

    def load(self, path: Path, model: LinkageModel) -> SpineIndex:
        index = SpineIndex.load(path, model, side="spine")
        index.model = model
        return index

    def write(self, index: SpineIndex) -> Path:
        """The index as a snapshot folder named by its position (the existing one if
        another replica wrote that position first)."""
        target = self.folder / f"spine-{index.log_position:015d}"
        if target.exists():
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}"
        index.save(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another replica renamed its copy into place first
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self._all()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        log.info("spine snapshot written", extra={"snapshot": target.name, "rows": index.rows})
        return target
