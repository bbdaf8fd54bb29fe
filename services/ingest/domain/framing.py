"""Byte-level checks on a streamed delivery: total size, line length, and its SHA-256.

Runs chunk by chunk as the body arrives, so an oversized body or an overlong line is refused
as soon as it is seen, and nothing but the current chunk is ever held in memory.
"""

from __future__ import annotations

import hashlib

__all__ = ["BodyTooLarge", "FramingGuard", "LineTooLong"]


class BodyTooLarge(Exception):
    """The body is larger than the configured maximum."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body exceeds {limit} bytes")
        self.limit = limit


class LineTooLong(Exception):
    """A line (one record) is longer than the configured maximum."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line} exceeds {limit} bytes")
        self.line = line
        self.limit = limit


class FramingGuard:
    """Feeds on body chunks; raises on the first limit crossed; digests what it has seen."""

    def __init__(self, *, max_body_bytes: int, max_line_bytes: int) -> None:
        self._max_body = max_body_bytes
        self._max_line = max_line_bytes
        self._sha = hashlib.sha256()
        self.size = 0
        self._line = 1
        self._current = 0  # bytes of the current, unfinished line

    def feed(self, chunk: bytes) -> None:
        """Account for one chunk of the body (any size, any split point)."""
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self._max_body:
            raise BodyTooLarge(self._max_body)
        self._sha.update(chunk)
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl == -1:
                self._current += len(chunk) - start
                # The newline may still come, but the line is already too long.
                if self._current > self._max_line:
                    raise LineTooLong(self._line, self._max_line)
                return
            if self._current + (nl - start) > self._max_line:
                raise LineTooLong(self._line, self._max_line)
            self._line += 1
            self._current = 0
            start = nl + 1

    def hexdigest(self) -> str:
        """SHA-256 of every byte fed so far (the delivery's content hash)."""
        return self._sha.hexdigest()
