"""Encoded records as numpy columns: what an index holds per record, a few hundred bytes.

One row per record version, laid out by a :class:`KeySchema`: token ids (int64 per token
key), token sets (one CSR pair of offsets and values per list key), Bloom encodings (uint8,
big-endian, ``BLOOM_BITS`` wide, with their popcounts), quality flags (one bit per
:class:`~contracts.events.QualityFlag`), the record id, and the positions in the spine log
where the version was born and died. Python objects per record would cost about ten times
as much (the index issue 13 measured at about 5 GiB per million people).

A store is growable (``append``) or frozen (``load``: the arrays of a snapshot directory,
memory-mapped read-only, so the replicas on one machine share them through the page cache).
``record(row)`` gives back the compact tuple the scorer compares.

A snapshot's columns are dictionary-encoded where that is smaller (``coded``: the distinct
values once, a code per row of 8, 16 or 32 bits as their number needs): each Bloom key's
encodings, with each encoding's popcount once beside it (:class:`CodedBlooms`; a million
people share a few thousand forenames and tens of thousands of surnames, a household its
address), the token ids grouped by code width (``CodedMatrix``: a date of birth takes 16
bits instead of 64, a sex 8; an NHS number, every person's own, stays a 64-bit id), the
token sets' values, the flags and the log positions; offsets are 32-bit when they fit.
Every read gives back the values the dense arrays held, so no decision changes; snapshots
of the earlier layouts (all dense, or the blooms coded as one uint32 matrix) still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contracts.events import QualityFlag
from services.link.domain.blocking import BLOOM_BITS
from services.link.domain.coded import (
    Coded,
    CodedBlooms,
    CodedMatrix,
    load_array,
    load_column,
    save_column,
)
from services.link.domain.records import KeySchema

__all__ = ["ALIVE", "FLAG_ORDER", "CodedBlooms", "RecordColumns", "flags_mask"]

ALIVE = np.iinfo(np.int64).max
"""``dead`` of a version that is still current."""

FLAG_ORDER: tuple[QualityFlag, ...] = tuple(QualityFlag)
"""Bit ``i`` of the flags column is ``FLAG_ORDER[i]`` (members are only ever appended)."""
_FLAG_BIT = {f: 1 << i for i, f in enumerate(FLAG_ORDER)}
_FLAG_SETS: dict[int, frozenset[QualityFlag]] = {}


def flags_mask(flags: Iterable[Any]) -> int:
    """The flags column value of a set of flags (flags no member names are not kept)."""
    mask = 0
    for f in flags:
        mask |= _FLAG_BIT.get(f, 0)
    return mask


def _flag_set(mask: int) -> frozenset[QualityFlag]:
    out = _FLAG_SETS.get(mask)
    if out is None:
        out = _FLAG_SETS[mask] = frozenset(f for f, b in _FLAG_BIT.items() if mask & b)
    return out


_ARRAYS = ("tok", "ids", "bloom", "pop", "flags", "born", "dead")


def _old_coded_blooms(folder: Path, keys: int, mmap: bool) -> CodedBlooms:
    """The Bloom column of a snapshot that coded it as one uint32 matrix of codes and a
    table file per key (the tables are joined in memory)."""
    matrix = load_array(folder / "bloom_codes.npy", mmap)
    tables = [np.load(folder / f"bloom{j}_table.npy") for j in range(keys)]
    offsets = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int64)
    codes = CodedMatrix([(np.arange(keys), matrix, None)], None, np.int64, matrix.shape)
    return CodedBlooms(codes, np.concatenate(tables), offsets)


def _narrow_offsets(off: np.ndarray) -> np.ndarray:
    """Offsets as int32 when they fit (a snapshot's list columns)."""
    if not len(off) or int(off[-1]) < np.iinfo(np.int32).max:
        return off.astype(np.int32)
    return off


def _arrays(value: Any) -> list[np.ndarray]:
    """The arrays a column is stored in (dense, coded, a matrix of either)."""
    if isinstance(value, (CodedMatrix, CodedBlooms)):
        return value.arrays()
    if isinstance(value, Coded):
        return [value.codes, value.table]
    return [value]


class RecordColumns:
    """Rows of compact records of one schema in numpy arrays."""

    def __init__(self, schema: KeySchema, capacity: int = 256, width: int = BLOOM_BITS) -> None:
        self.schema = schema
        self.width = width
        self.n = 0
        self.frozen = False
        cap = max(capacity, 16)
        t, f, nb = len(schema.token_keys), len(schema.bloom_keys), width // 8
        # Dense arrays while growing; a loaded store's may be coded (CodedMatrix, Coded,
        # CodedBlooms), indexed as the arrays they stand for.
        self.tok: Any = np.zeros((cap, t), dtype=np.int64)
        self.ids = np.zeros(cap, dtype="S44")
        self.bloom: Any = np.zeros((cap, f, nb), dtype=np.uint8)
        self.pop: Any = np.zeros((cap, f), dtype=np.uint16)
        self.flags: Any = np.zeros(cap, dtype=np.uint32)
        self.born: Any = np.zeros(cap, dtype=np.int64)
        self.dead = np.full(cap, ALIVE, dtype=np.int64)
        n_lists = len(schema.list_keys)
        self._loff = [np.zeros(cap + 1, dtype=np.int64) for _ in range(n_lists)]
        self._lval: list[Any] = [np.zeros(cap * 2, dtype=np.int64) for _ in range(n_lists)]

    def __len__(self) -> int:
        return self.n

    # -- growing ---------------------------------------------------------------------------

    def _reserve(self, rows: int, list_values: Sequence[int]) -> None:
        need = self.n + rows
        cap = len(self.born)
        if need > cap:
            new = max(need, cap * 2)
            for name in _ARRAYS:
                old = getattr(self, name)
                grown = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
                if name == "dead":
                    grown[:] = ALIVE
                grown[: self.n] = old[: self.n]
                setattr(self, name, grown)
            for i, off in enumerate(self._loff):
                grown = np.zeros(new + 1, dtype=np.int64)
                grown[: self.n + 1] = off[: self.n + 1]
                self._loff[i] = grown
        for i, extra in enumerate(list_values):
            used = int(self._loff[i][self.n])
            if used + extra > len(self._lval[i]):
                grown = np.zeros(max(used + extra, len(self._lval[i]) * 2), dtype=np.int64)
                grown[:used] = self._lval[i][:used]
                self._lval[i] = grown

    def _fit_ids(self, ids: Sequence[bytes]) -> None:
        longest = max((len(i) for i in ids), default=0)
        if longest > self.ids.dtype.itemsize:
            self.ids = self.ids.astype(f"S{longest}")

    def append(
        self, record_ids: Sequence[str], records: Sequence[tuple], born: int | Sequence[int]
    ) -> int:
        """Add rows (compact tuples laid out by this schema); returns the first row number."""
        if self.frozen:
            raise TypeError("a loaded store is read-only; add to the index's own store")
        k = len(records)
        schema = self.schema
        t, n_lists = len(schema.token_keys), len(schema.list_keys)
        bloom_at = t + n_lists
        lists = [[r[t + i] for r in records] for i in range(n_lists)]
        self._reserve(k, [sum(len(x) for x in col) for col in lists])
        first = self.n
        rows = slice(first, first + k)
        raw_ids = [i.encode() for i in record_ids]
        self._fit_ids(raw_ids)
        self.ids[rows] = raw_ids
        if t:
            self.tok[rows] = [r[:t] for r in records]
        nb = self.width // 8
        empty = bytes(nb)
        for j in range(len(schema.bloom_keys)):
            # One buffer of every row's big-endian bytes, copied in at once (a row without
            # an encoding stays zero, as does its popcount).
            col = [r[bloom_at + j] for r in records]
            raw = b"".join(empty if b is None else b[0].to_bytes(nb, "big") for b in col)
            self.bloom[rows, j] = np.frombuffer(raw, dtype=np.uint8).reshape(k, nb)
            self.pop[rows, j] = [0 if b is None else b[1] for b in col]
        self.flags[rows] = [flags_mask(r[-1]) for r in records]
        self.born[rows] = born
        self.dead[rows] = ALIVE
        for i, col in enumerate(lists):
            off, val = self._loff[i], self._lval[i]
            at = int(off[first])
            ordered = [v for values in col for v in sorted(values)]
            val[at : at + len(ordered)] = ordered
            off[first + 1 : first + k + 1] = at + np.cumsum([len(values) for values in col])
        self.n += k
        return first

    def take(self, keep: np.ndarray) -> RecordColumns:
        """A frozen copy holding only the rows where ``keep`` (one bool per row) is true, in
        their order, with their born and dead positions."""
        n = self.n
        kept = int(np.count_nonzero(keep))
        out = RecordColumns(self.schema, capacity=kept or 16, width=self.width)
        out.ids = np.zeros(len(out.born), dtype=self.ids.dtype)
        for name in ("tok", "ids", "bloom", "pop", "flags", "born", "dead"):
            getattr(out, name)[:kept] = getattr(self, name)[:n][keep]
        for i, (off, val) in enumerate(zip(self._loff, self._lval, strict=True)):
            off = off[: n + 1].astype(np.int64)
            lengths = np.diff(off)
            values = np.array(val[int(off[0]) : int(off[-1])][np.repeat(keep, lengths)])
            out._lval[i] = values.astype(np.int64) if len(values) else np.zeros(2, np.int64)
            out._loff[i] = np.zeros(len(out.born) + 1, dtype=np.int64)
            out._loff[i][1 : kept + 1] = np.cumsum(lengths[keep])
        out.n = kept
        out.frozen = True
        return out

    # -- reading ---------------------------------------------------------------------------

    def list_offsets(self, i: int) -> np.ndarray:
        return self._loff[i]

    def list_values(self, i: int) -> np.ndarray:
        return self._lval[i]

    def record_id(self, row: int) -> str:
        return bytes(self.ids[row]).decode()

    def record(self, row: int) -> tuple:
        """The compact tuple of one row (what ``KeySchema.compact`` made of the record)."""
        out: list[Any] = self.tok[row].tolist()
        for off, val in zip(self._loff, self._lval, strict=True):
            out.append(frozenset(val[off[row] : off[row + 1]].tolist()))
        pops = self.pop[row].tolist()
        for j, p in enumerate(pops):
            out.append((int.from_bytes(self.bloom[row, j].tobytes(), "big"), p) if p else None)
        out.append(_flag_set(int(self.flags[row])))
        return tuple(out)

    def records(self, rows: np.ndarray) -> list[tuple]:
        """The compact tuples of many rows at once (a lookup's candidates): a few numpy
        calls for all of them, then plain Python per row."""
        if not len(rows):
            return []
        toks = self.tok[rows].tolist()
        lists: list[list[frozenset[int]]] = []
        for off, val in zip(self._loff, self._lval, strict=True):
            lo, hi = off[rows], off[rows + 1]
            lens = (hi - lo).tolist()
            total = sum(lens)
            if total:
                starts = np.repeat(lo - np.cumsum(np.concatenate(([0], hi - lo))[:-1]), hi - lo)
                flat = val[starts + np.arange(total)].tolist()
            else:
                flat = []
            out, at = [], 0
            for n in lens:
                out.append(frozenset(flat[at : at + n]))
                at += n
            lists.append(out)
        pops = self.pop[rows].tolist()
        n_blooms = len(self.schema.bloom_keys)
        nb = self.width // 8
        raw = self.bloom[rows].tobytes()
        flags = self.flags[rows].tolist()
        from_bytes = int.from_bytes
        result = []
        for i, t in enumerate(toks):
            for col in lists:
                t.append(col[i])
            base = i * n_blooms * nb
            for j, p in enumerate(pops[i]):
                if p:
                    at = base + j * nb
                    t.append((from_bytes(raw[at : at + nb], "big"), p))
                else:
                    t.append(None)
            t.append(_flag_set(flags[i]))
            result.append(tuple(t))
        return result

    def gather(self, rows: np.ndarray) -> tuple[Any, ...]:
        """The columns of some rows, for scoring on columns: (tokens, per list slot (owner,
        value) pairs, Bloom words, popcounts, flags, ids)."""
        lists = []
        for off, val in zip(self._loff, self._lval, strict=True):
            lo, hi = off[rows], off[rows + 1]
            lens = hi - lo
            total = int(lens.sum())
            owner = np.repeat(np.arange(len(rows)), lens)
            if total:
                starts = np.repeat(lo - np.cumsum(np.concatenate(([0], lens)))[:-1], lens)
                values = val[starts + np.arange(total)]
            else:
                values = np.zeros(0, dtype=np.int64)
            lists.append((owner, values))
        blooms = self.bloom[rows]
        words = blooms.reshape(len(rows), blooms.shape[1], -1).view(np.uint64)
        return (
            self.tok[rows],
            lists,
            words,
            self.pop[rows].astype(np.int64),
            self.flags[rows].astype(np.int64),
            self.ids[rows],
        )

    # -- files -----------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the rows as ``.npy`` files into ``folder``: the Bloom keys, token ids, list
        values, flags and log positions coded where that is smaller (module docstring)."""
        folder.mkdir(parents=True, exist_ok=True)
        n = self.n
        blooms = CodedBlooms.encode(self.bloom[:n])
        coded = {"blooms": blooms.codes.save(folder, "blooms")}
        np.save(folder / "blooms_table.npy", blooms.table)
        coded["bloom_offsets"] = blooms.offsets.tolist()
        pops = blooms.popcounts(self.pop[:n])
        if pops is not None and pops.table is not None:
            np.save(folder / "blooms_pops.npy", pops.table)
        else:
            np.save(folder / "pop.npy", self.pop[:n])
        coded["tok"] = CodedMatrix.encode(self.tok[:n]).save(folder, "tok")
        for name in ("flags", "born", "dead"):
            save_column(folder, name, getattr(self, name)[:n])
        # ids at the width of the longest, not the growable default
        ids = self.ids[:n]
        longest = int(np.char.str_len(ids).max()) if n else 1
        np.save(folder / "ids.npy", ids.astype(f"S{max(longest, 1)}"))
        for i, (off, val) in enumerate(zip(self._loff, self._lval, strict=True)):
            np.save(folder / f"list{i}_off.npy", _narrow_offsets(off[: n + 1]))
            save_column(folder, f"list{i}_val", val[: int(off[n])])
        (folder / "columns.json").write_text(
            json.dumps(
                {
                    "rows": n,
                    "width": self.width,
                    "token_keys": self.schema.token_keys,
                    "list_keys": self.schema.list_keys,
                    "bloom_keys": self.schema.bloom_keys,
                    "flags": [f.value for f in FLAG_ORDER],
                    "coded": coded,
                }
            )
        )

    @classmethod
    def load(cls, folder: Path, schema: KeySchema, *, mmap: bool = True) -> RecordColumns:
        """A frozen store of the rows :meth:`save` wrote (ValueError if laid out for another
        schema), or an earlier layout's. Only ``dead`` is copied into memory: a later
        version kills a row."""
        meta = json.loads((folder / "columns.json").read_text())
        layout = (schema.token_keys, schema.list_keys, schema.bloom_keys)
        if tuple(map(tuple, (meta["token_keys"], meta["list_keys"], meta["bloom_keys"]))) != layout:
            raise ValueError("the snapshot's columns are laid out for another model")
        if meta["flags"] != [f.value for f in FLAG_ORDER][: len(meta["flags"])]:
            raise ValueError("the snapshot's flag bits are not this version's")
        store = cls.__new__(cls)
        store.schema = schema
        store.width = int(meta["width"])
        n = store.n = int(meta["rows"])
        store.frozen = True
        if "coded" in meta:
            coded = meta["coded"]
            codes = CodedMatrix.load(folder, "blooms", coded["blooms"], np.int64, mmap)
            offsets = np.array(coded["bloom_offsets"], dtype=np.int64)
            store.bloom = CodedBlooms(codes, load_array(folder / "blooms_table.npy", mmap), offsets)
            if (folder / "pop.npy").exists():
                store.pop = load_array(folder / "pop.npy", mmap)
            else:  # each encoding's popcount, read through the same codes
                pops = load_array(folder / "blooms_pops.npy", mmap)
                store.pop = store.bloom.with_table(pops, np.uint16)
            store.tok = CodedMatrix.load(folder, "tok", coded["tok"], np.int64, mmap)
            for name in ("flags", "born", "dead"):
                setattr(store, name, load_column(folder, name, mmap))
            store.ids = load_array(folder / "ids.npy", mmap)
        else:  # the earlier layouts: dense columns, the blooms dense or coded in one matrix
            for name in _ARRAYS:
                if name == "bloom" and (folder / "bloom_codes.npy").exists():
                    store.bloom = _old_coded_blooms(folder, len(schema.bloom_keys), mmap)
                else:
                    setattr(store, name, load_array(folder / f"{name}.npy", mmap))
        # writable, in memory: versions die after the snapshot
        store.dead = np.array(store.dead[:n], dtype=np.int64)
        n_lists = len(schema.list_keys)
        store._loff = [load_array(folder / f"list{i}_off.npy", mmap) for i in range(n_lists)]
        store._lval = [load_column(folder, f"list{i}_val", mmap) for i in range(n_lists)]
        return store

    def nbytes(self) -> int:
        """Bytes the rows' arrays take (used rows only; an array two columns share, such
        as the Bloom codes that also number the popcounts, once)."""
        n = self.n
        seen: dict[int, int] = {}
        for name in _ARRAYS:
            value = getattr(self, name)
            for array in _arrays(value):
                # a growable store's spare capacity is not used
                used = array[:n] if isinstance(value, np.ndarray) else array
                seen[id(array)] = used.nbytes
        for off, val in zip(self._loff, self._lval, strict=True):
            seen[id(off)] = off[: n + 1].nbytes
            for array in _arrays(val):
                used = array[: int(off[n])] if isinstance(val, np.ndarray) else array
                seen[id(array)] = used.nbytes
        return int(sum(seen.values()))
