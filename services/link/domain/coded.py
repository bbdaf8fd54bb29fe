"""Dictionary-encoded columns: the distinct values once, a narrow code per row.

A spine's columns repeat: a million people share a few thousand forenames, tens of
thousands of surnames and dates of birth, a household its address. A frozen store (a
snapshot) keeps such a column as a table of its distinct values and a code per row, 8, 16
or 32 bits as the table needs, and a column whose values are nearly all distinct (an NHS
number's token id) as it is. Indexed like the dense array it stands for, each class here
gives back the same values as a new array, so the code that reads a store does not know.

Several columns are one :class:`CodedMatrix`: the columns whose codes have the same width
side by side in one row-major array (a row's codes in one cache line), and one table of
every column's values end to end (``offsets`` says where each column's part starts), so
decoding the rows of a record's candidates is one gather per width, however many columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from services.link.domain.blocking import mix_array

__all__ = [
    "Coded",
    "CodedBlooms",
    "CodedMatrix",
    "code_dtype",
    "load_array",
    "load_column",
    "save_column",
]


def code_dtype(distinct: int) -> np.dtype:
    """The narrowest unsigned integer that numbers ``distinct`` values."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if distinct <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def load_array(path: Path, mmap: bool) -> np.ndarray:
    """An array file, memory-mapped read-only (as a plain ndarray over the mapping: numpy's
    memmap subclass costs a Python call on every index) or read into memory."""
    if not mmap:
        return np.load(path)
    return np.asarray(np.load(path, mmap_mode="r"))


def _distinct(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values of a 1-d column and each row's index among them (what
    ``np.unique(return_inverse=True)`` gives, by a sort and a search: quicker)."""
    table = np.unique(column)
    return table, np.searchsorted(table, column)


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-d uint8 array (Bloom encodings) and each row's index among
    them. Rows are told apart by a 64-bit hash of their bytes, then every row is compared
    with its table row: were two distinct encodings ever to share a hash, the exact (slower)
    sort of the bytes is used instead, so the result is exact either way."""
    n, nb = rows.shape
    if nb % 8 or not n:
        table, inverse = np.unique(rows.view(f"V{nb}").ravel(), return_inverse=True)
        return table.view(np.uint8).reshape(len(table), nb), inverse.ravel()
    words = rows.view(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(nb // 8):
        h = mix_array(h ^ words[:, j])
    hashes, inverse = _distinct(h)
    first = np.empty(len(hashes), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)  # the first row of each hash
    table = rows[first]
    if not np.array_equal(table[inverse], rows):
        table, inverse = np.unique(rows.view(f"V{nb}").ravel(), return_inverse=True)
        return table.view(np.uint8).reshape(len(table), nb), inverse.ravel()
    return table, inverse


def _size(key: Any, n: int) -> int:
    return len(range(*key.indices(n))) if isinstance(key, slice) else len(key)


class Coded:
    """One column dictionary-encoded: its distinct values (``table``, sorted) and a code per
    row (``codes``). Indexed like the column (a row, a slice, rows), the same values."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray, table: np.ndarray) -> None:
        self.codes = codes
        self.table = table

    @staticmethod
    def encode(column: np.ndarray) -> Coded | np.ndarray:
        """The coded form of a 1-d column, or the column itself where coding saves nothing
        (values nearly all distinct)."""
        if not len(column):
            return column
        table, inverse = _distinct(column)
        dtype = code_dtype(len(table))
        if len(column) * dtype.itemsize + table.nbytes >= column.nbytes:
            return column
        return Coded(inverse.astype(dtype), table)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.table.nbytes)

    def __getitem__(self, key: Any) -> Any:
        return self.table[self.codes[key]]


def save_column(folder: Path, name: str, column: np.ndarray) -> None:
    """A 1-d column as ``name_codes.npy`` and ``name_table.npy`` where coding it is smaller,
    else as ``name.npy``."""
    coded = Coded.encode(column)
    if isinstance(coded, Coded):
        np.save(folder / f"{name}_codes.npy", coded.codes)
        np.save(folder / f"{name}_table.npy", coded.table)
    else:
        np.save(folder / f"{name}.npy", column)


def load_column(folder: Path, name: str, mmap: bool) -> Any:
    """What :func:`save_column` wrote (or a plain ``name.npy`` an older snapshot wrote)."""
    if (folder / f"{name}_codes.npy").exists():
        codes = load_array(folder / f"{name}_codes.npy", mmap)
        return Coded(codes, load_array(folder / f"{name}_table.npy", mmap))
    return load_array(folder / f"{name}.npy", mmap)


Group = tuple[np.ndarray, np.ndarray, np.ndarray | None]
"""(the matrix's columns it holds, their ``(n, g)`` codes or values, each column's offset
into the table, or None when the values are held as they are)."""


class CodedMatrix:
    """An ``(n, k)`` column of integers (token ids, popcounts, Bloom codes) as groups of
    columns of one width each, decoded through one table (see the module docstring).

    Indexed like the 2-d array it stands for (``[row]``, ``[rows]``, ``[lo:hi]``,
    ``[rows, j]``), it gives back a new array of the same values, of ``dtype``."""

    def __init__(
        self, groups: Sequence[Group], table: np.ndarray | None, dtype: Any, shape: tuple[int, int]
    ) -> None:
        self.groups = list(groups)
        self.table = table
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self._where = {}  # column -> (group, position in it)
        for g, (cols, _, _) in enumerate(self.groups):
            for at, col in enumerate(cols.tolist()):
                self._where[col] = (g, at)

    @classmethod
    def encode(cls, dense: np.ndarray) -> CodedMatrix:
        """The coded form of a dense ``(n, k)`` column: each column coded where that is
        smaller (:meth:`Coded.encode`), grouped by code width."""
        n, k = dense.shape
        by_width: dict[np.dtype, list[tuple[int, np.ndarray, np.ndarray | None]]] = {}
        for j in range(k):
            coded = Coded.encode(np.ascontiguousarray(dense[:, j]))
            if isinstance(coded, Coded):
                by_width.setdefault(coded.codes.dtype, []).append((j, coded.codes, coded.table))
            else:
                by_width.setdefault(dense.dtype, []).append((j, coded, None))
        return cls.of(by_width, dense.dtype, (n, k))

    @classmethod
    def of(
        cls,
        by_width: dict[np.dtype, list[tuple[int, np.ndarray, np.ndarray | None]]],
        dtype: Any,
        shape: tuple[int, int],
    ) -> CodedMatrix:
        """A matrix of columns given one by one as (column, codes or values, table or None),
        grouped as given."""
        groups: list[Group] = []
        tables: list[np.ndarray] = []
        at = 0
        for width in sorted(by_width, key=lambda d: (d.itemsize, d.kind)):
            parts = by_width[width]
            cols = np.array([j for j, _, _ in parts], dtype=np.int64)
            values = np.stack([v for _, v, _ in parts], axis=1).astype(width, copy=False)
            if parts[0][2] is None:
                groups.append((cols, values, None))
                continue
            offsets = []
            for _, _, table in parts:
                assert table is not None
                offsets.append(at)
                tables.append(table)
                at += len(table)
            groups.append((cols, values, np.array(offsets, dtype=np.int64)))
        table = np.concatenate(tables).astype(dtype) if tables else None
        return cls(groups, table, dtype, shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def base(self) -> Any:
        """What the first group's codes are a view of (as ``ndarray.base``: the mapping of a
        snapshot's file, None when read into memory)."""
        return self.groups[0][1].base if self.groups else None

    def arrays(self) -> list[np.ndarray]:
        """The arrays the matrix is held in."""
        out = [values for _, values, _ in self.groups]
        return out + ([self.table] if self.table is not None else [])

    def _decode(self, values: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        if offsets is None or self.table is None:
            return values
        return self.table[values.astype(np.int64) + offsets]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows, j = key
            g, at = self._where[j]
            _, values, offsets = self.groups[g]
            column = values[rows, at]
            if offsets is not None and self.table is not None:
                column = self.table[column.astype(np.int64) + offsets[at]]
            return np.asarray(column, dtype=self.dtype)
        if isinstance(key, (int, np.integer)):
            out = np.empty(self.shape[1], dtype=self.dtype)
        else:
            out = np.empty((_size(key, self.shape[0]), self.shape[1]), dtype=self.dtype)
        for cols, values, offsets in self.groups:
            out[..., cols] = self._decode(values[key], offsets)
        return out

    def save(self, folder: Path, name: str) -> dict[str, Any]:
        """Write the groups (``name_<width>.npy``) and the table (``name_table.npy``); the
        layout to give :meth:`load`."""
        groups = []
        for cols, values, offsets in self.groups:
            file = f"{name}_{values.dtype.name}.npy"
            np.save(folder / file, values)
            groups.append(
                {
                    "file": file,
                    "columns": cols.tolist(),
                    "offsets": offsets.tolist() if offsets is not None else None,
                }
            )
        if self.table is not None:
            np.save(folder / f"{name}_table.npy", self.table)
        return {"groups": groups, "table": self.table is not None, "shape": list(self.shape)}

    @classmethod
    def load(
        cls, folder: Path, name: str, layout: dict[str, Any], dtype: Any, mmap: bool
    ) -> CodedMatrix:
        groups: list[Group] = [
            (
                np.array(g["columns"], dtype=np.int64),
                load_array(folder / g["file"], mmap),
                np.array(g["offsets"], dtype=np.int64) if g["offsets"] is not None else None,
            )
            for g in layout["groups"]
        ]
        table = load_array(folder / f"{name}_table.npy", mmap) if layout["table"] else None
        n, k = layout["shape"]
        return cls(groups, table, dtype, (int(n), int(k)))


class CodedBlooms:
    """A frozen store's Bloom column, dictionary-encoded: the distinct encodings of every
    Bloom key end to end in one ``(m, bytes)`` uint8 table (key ``j``'s from
    ``offsets[j]``), and each row's code per key (``codes``, a :class:`CodedMatrix` of
    narrow integers). ``tables[j]`` is key ``j``'s part of the table.

    Indexed like the dense ``(n, keys, bytes)`` array it stands for (``[rows]``, ``[row, j]``,
    ``[rows, j]``, ``[lo:hi]``), it gives back the same bytes as a new array."""

    def __init__(self, codes: CodedMatrix, table: np.ndarray, offsets: np.ndarray) -> None:
        self.codes = codes
        self.table = table
        self.offsets = offsets
        ends = [*offsets.tolist()[1:], len(table)]
        self.tables = [table[lo:hi] for lo, hi in zip(offsets.tolist(), ends, strict=True)]
        self.shape = (len(codes), len(offsets), table.shape[1] if table.ndim == 2 else 0)
        self.dtype = np.dtype(np.uint8)

    @classmethod
    def encode(cls, dense: np.ndarray) -> CodedBlooms:
        """The coded form of a dense ``(n, keys, bytes)`` column."""
        n, keys, nb = dense.shape
        by_width: dict[np.dtype, list[tuple[int, np.ndarray, np.ndarray | None]]] = {}
        tables, offsets, at = [], [], 0
        for j in range(keys):
            table, inverse = _distinct_rows(np.ascontiguousarray(dense[:, j, :]))
            codes = inverse.astype(code_dtype(len(table)))
            by_width.setdefault(codes.dtype, []).append((j, codes, None))
            tables.append(table)
            offsets.append(at)
            at += len(table)
        big = np.concatenate(tables) if tables else np.zeros((0, nb), dtype=np.uint8)
        matrix = CodedMatrix.of(by_width, np.int64, (n, keys))
        return cls(matrix, big, np.array(offsets, dtype=np.int64))

    def popcounts(self, pop: np.ndarray) -> CodedMatrix | None:
        """The rows' popcounts (``(n, keys)``) through the same codes: each distinct
        encoding's popcount once; None if a row's popcount is not its encoding's (then the
        rows keep their own)."""
        per = np.zeros(len(self.table), dtype=pop.dtype)
        for j in range(self.shape[1]):
            codes = self.codes[:, j] + self.offsets[j]
            per[codes] = pop[:, j]
            if not np.array_equal(per[codes], pop[:, j]):
                return None
        return self.with_table(per, pop.dtype)

    def with_table(self, per_code: np.ndarray, dtype: Any) -> CodedMatrix:
        """A matrix of one value per distinct encoding (``per_code``, aligned with
        ``table``), read through these codes."""
        groups = [(cols, values, self.offsets[cols]) for cols, values, _ in self.codes.groups]
        return CodedMatrix(groups, per_code, dtype, (len(self), self.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.codes.arrays()) + self.table.nbytes)

    def arrays(self) -> list[np.ndarray]:
        return [*self.codes.arrays(), self.table]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows, j = key
            return self.table[self.codes[rows, j] + self.offsets[j]]
        return self.table[self.codes[key] + self.offsets]
