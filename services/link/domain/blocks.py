"""One sorted chunk of the blocking index: 64-bit blocking keys and the rows under each.

A chunk holds each distinct key once with where its rows start (``starts``, the rows of key
``i`` are ``rows[starts[i]:starts[i + 1]]``, ascending): most keys of a spine are one
person's own (a date of birth with a surname), but the rest have blocks of tens to
thousands of rows, so this takes about half the bytes of a key per row. Looking up a
record's keys is one ``searchsorted`` for all of them.

A snapshot written before chunks were grouped holds one key per row (``keys`` sorted, with
repeats, and ``starts`` None); it is looked up with two ``searchsorted`` instead, as it was.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["Blocks"]

_SPLIT_AT = 1 << 20
"""Pairs from which a chunk is sorted in two threads (below it a thread costs more than it
saves)."""


def _sort_into(
    keys: np.ndarray, rows: np.ndarray, out_keys: np.ndarray, out_rows: np.ndarray
) -> None:
    """(key, row) pairs sorted by key, then row, written into ``out_keys``/``out_rows``."""
    # The pairs mostly come rule by rule, each rule's rows ascending, so a stable sort by key
    # alone already leaves each key's rows in order; checked, and sorted by both if not.
    order = np.argsort(keys, kind="stable")
    np.take(keys, order, out=out_keys)
    np.take(rows, order, out=out_rows)
    del order
    if np.any((out_keys[1:] == out_keys[:-1]) & (out_rows[1:] < out_rows[:-1])):
        order = np.lexsort((rows, keys))
        np.take(keys, order, out=out_keys)
        np.take(rows, order, out=out_rows)


class Blocks:
    """Keys and the rows under them, sorted by key (see the module docstring)."""

    __slots__ = ("keys", "rows", "starts")

    def __init__(self, keys: np.ndarray, rows: np.ndarray, starts: np.ndarray | None) -> None:
        self.keys = keys
        self.rows = rows
        self.starts = starts

    @classmethod
    def of(cls, keys: np.ndarray, rows: np.ndarray) -> Blocks:
        """A chunk of (key, row) pairs in any order: sorted by key, then row, and grouped."""
        out_keys, out_rows = np.empty_like(keys), np.empty_like(rows)
        if len(keys) >= _SPLIT_AT:
            # Sorting is most of an index build. Keys with the top bit clear all sort before
            # those with it set, so the two halves sort apart, each in a thread (numpy lets
            # go of the GIL while it sorts), straight into their places in the output.
            high = keys >= np.uint64(1 << 63)
            n_low = len(keys) - int(np.count_nonzero(high))

            def sort_half(half: tuple[np.ndarray, slice]) -> None:
                mask, where = half
                _sort_into(keys[mask], rows[mask], out_keys[where], out_rows[where])

            with ThreadPoolExecutor(2) as pool:
                halves = [(~high, slice(0, n_low)), (high, slice(n_low, None))]
                list(pool.map(sort_half, halves))
        else:
            _sort_into(keys, rows, out_keys, out_rows)
        keys, rows = out_keys, out_rows
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        at = np.flatnonzero(first)
        starts = np.empty(len(at) + 1, dtype=np.int64)
        starts[:-1] = at
        starts[-1] = len(keys)
        return cls(keys[at], rows, starts)

    @classmethod
    def empty(cls) -> Blocks:
        return cls(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), np.zeros(1, np.int64))

    def __len__(self) -> int:
        """Rows held (one per key a row is under)."""
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        starts = self.starts.nbytes if self.starts is not None else 0
        return int(self.keys.nbytes + self.rows.nbytes + starts)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (key, row) pair: keys repeated per row (for merging chunks)."""
        if self.starts is None:
            return np.asarray(self.keys), np.asarray(self.rows, dtype=np.int64)
        keys = np.repeat(self.keys, np.diff(self.starts))
        return keys, np.asarray(self.rows, dtype=np.int64)

    def ranges(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` per query key: its rows are ``rows[lo:hi]`` (empty if absent)."""
        if self.starts is None:
            return np.searchsorted(self.keys, q, "left"), np.searchsorted(self.keys, q, "right")
        if not len(self.keys):
            zero = np.zeros(len(q), dtype=np.int64)
            return zero, zero
        at = np.searchsorted(self.keys, q)
        at = np.minimum(at, len(self.keys) - 1)
        found = self.keys[at] == q
        lo = np.where(found, self.starts[at], 0)
        hi = np.where(found, self.starts[at + 1], 0)
        return lo, hi
