"""Lands a streamed body in a private file, checking limits and hashing as it arrives.

Why a spool rather than validating while the body arrives: a delivery that breaks a
whole-body rule (too large, a line too long) is refused before any record is published,
and a body identical to an earlier delivery is recognised by its SHA-256 before it is
processed, so nothing is published twice. Memory stays bounded by one write buffer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from anyio import to_thread

from services.ingest.domain.framing import FramingGuard

__all__ = ["Spooled", "iter_lines", "spool_body"]

_WRITE_BUFFER = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Spooled:
    """A body on disk: where, how big, and its SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str

    def remove(self) -> None:
        """Delete the file (identifiable data does not outlive its delivery)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _open_spool(directory: Path) -> tuple[int, str]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file with mode 0600.
    return tempfile.mkstemp(prefix="delivery-", suffix=".part", dir=directory)


async def spool_body(
    chunks: AsyncIterator[bytes], *, directory: Path, guard: FramingGuard
) -> Spooled:
    """Write ``chunks`` to a new file under ``directory``; the guard raises on a limit."""
    fd, name = await to_thread.run_sync(_open_spool, directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            pending = bytearray()
            async for chunk in chunks:
                guard.feed(chunk)
                pending += chunk
                if len(pending) >= _WRITE_BUFFER:
                    data, pending = pending, bytearray()
                    await to_thread.run_sync(handle.write, data)
            if pending:
                await to_thread.run_sync(handle.write, pending)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return Spooled(path, guard.size, guard.hexdigest())


def iter_lines(path: Path, buffer_size: int = 1024 * 1024) -> Iterator[bytes]:
    """The file's lines with their newlines (line length was bounded when it was spooled)."""
    with path.open("rb", buffering=buffer_size) as handle:
        yield from handle
