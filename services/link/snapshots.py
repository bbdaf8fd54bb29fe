"""Snapshots of the spine view: the index's arrays at a log position, in a folder of files.

A replica starts from the newest snapshot its model can use (same key layout and blocking
rules) and applies the log from the snapshot's position: seconds, instead of reading and
parsing every spine version. The arrays are memory-mapped, so replicas that share the
folder on one machine share one copy in the page cache.

A snapshot is written to a temporary folder and renamed into place, so a reader never sees
half of one; if another replica already wrote one at the same position, that one is kept.
The newest ``keep`` are kept, and none older than the last erasure the log has forgotten
(docs/operators.md, "Objections, erasure and opt-outs").
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable
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

    def any_below(self, position: int) -> bool:
        """Whether a snapshot older than ``position`` is on disk."""
        return any(self.position_of(p) < position for p in self._all())

    @staticmethod
    def position_of(path: Path) -> int:
        """The log position a snapshot folder was written at (from its name)."""
        return int(path.name.removeprefix("spine-"))

    def write(
        self,
        index: SpineIndex,
        *,
        erased: Iterable[str] = (),
        supersede_below: int = 0,
    ) -> Path | None:
        """The index as a snapshot folder named by its position (the existing one if
        another replica wrote that position first); None if a newer one is there already.

        No row of an ``erased`` spine person is written (a copy of the index without them
        is). Every snapshot below ``supersede_below`` (the position of the last erasure
        whose entries the log no longer holds) is deleted, whatever ``keep`` says: it may
        hold an erased person's encodings."""
        target = self.folder / f"spine-{index.log_position:015d}"
        existing = self._all()
        if existing and self.position_of(existing[0]) > index.log_position:
            self._supersede(supersede_below)
            return None
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            gone = sorted(set(erased))
            saved = index.without(gone) if gone and index.holds_any(gone) else index
            tmp = self.folder / f".tmp-{uuid.uuid4().hex}"
            saved.save(tmp)
            try:
                os.rename(tmp, target)
            except OSError:  # another replica renamed its copy into place first
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("spine snapshot written", extra={"snapshot": target.name, "rows": saved.rows})
        for old in self._all()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        self._supersede(supersede_below)
        return target

    def _supersede(self, below: int) -> None:
        for old in self._all():
            if self.position_of(old) < below:
                shutil.rmtree(old, ignore_errors=True)
                log.info("spine snapshot superseded by an erasure", extra={"snapshot": old.name})
