"""The record index: every version of every record in columns, and a blocking index on them.

Rows live in :class:`~services.link.domain.columns.RecordColumns`: a frozen *base* (loaded
from a snapshot, memory-mapped) and a growable *delta* (versions added since). Each row
knows the spine-log positions where it was born and died, so a replaced version stops being
a candidate but still answers "which records did this change touch?".

The blocking index maps 64-bit keys (``blocking``) to rows as sorted integer arrays: a
log-structured set of sorted chunks (a snapshot's one big chunk, smaller ones merged
geometrically as versions arrive) plus a small dict of the newest keys. A lookup is one
``searchsorted`` per chunk for all of a record's keys at once.

One class serves both sides: the spine index holds spine people under each rule's spine
keys and is searched with an incoming record's keys (``candidates``); an index of incoming
records holds them under their own keys and is searched with a spine person's, to find the
records a spine change touches (``matches``). Blocks larger than a rule's ``max_block``
(alive rows) are skipped and counted (``skipped_blocks``) so the recall cost is visible.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from services.link.domain.blocking import (
    BLOOM_BITS,
    KeyFunction,
    RuleKeys,
    compile_record_keys,
    mix,
    mix_array,
    rule_keys,
)
from services.link.domain.blocks import Blocks
from services.link.domain.columns import ALIVE, RecordColumns
from services.link.domain.model import BlockingRule, LinkageModel
from services.link.domain.records import EncodedRecord, Interner, KeySchema
from services.link.domain.vectorised import Candidates, subset

__all__ = ["RecordIndex", "SpineIndex", "blocking_keys"]

Side = Literal["spine", "incoming"]

_ID_SEED = 0x51ED_27A1_3C5B_9F01
_PENDING_MAX = 50_000
"""Keys kept in the dict before they become a sorted chunk."""
_THREADED_ROWS = 200_000
"""Rows from which the rules' keys are computed two rules at a time."""


_ONE_RULE: dict[tuple[int, BlockingRule, int, bool], KeyFunction] = {}


def blocking_keys(
    rule_no: int, rule: BlockingRule, rec: tuple, schema: KeySchema, *, spine_side: bool
) -> Iterator[int]:
    """The blocking keys of one compact record under one rule (none if a key is missing)."""
    cache_key = (rule_no, rule, id(schema), spine_side)
    fn = _ONE_RULE.get(cache_key)
    if fn is None:
        if len(_ONE_RULE) > 4096:
            _ONE_RULE.clear()
        fn = _ONE_RULE[cache_key] = compile_record_keys(
            [(rule_no, rule)], schema, spine_side=spine_side
        )
    for key, _ in fn(rec):
        yield key


def _id_hash(record_id: str) -> int:
    """A 64-bit hash of a record id: its bytes, zero-padded to whole 64-bit little-endian
    words, folded with :func:`~services.link.domain.blocking.mix` (as :func:`_id_hashes`
    does for a whole column)."""
    raw = record_id.encode()
    raw += b"\0" * (-len(raw) % 8)
    h = _ID_SEED
    for (w,) in struct.iter_unpack("<Q", raw):
        h = mix(h ^ w)
    return h


def _id_hashes(ids: np.ndarray) -> np.ndarray:
    """:func:`_id_hash` of every id of a fixed-width bytes column."""
    width = ids.dtype.itemsize
    padded = -(-width // 8) * 8
    if padded != width:
        ids = ids.astype(f"S{padded}")
    words = np.ascontiguousarray(ids).view("<u8").reshape(len(ids), padded // 8)
    h = np.full(len(ids), _ID_SEED, dtype=np.uint64)
    # A shorter id's trailing zero words must not be folded in: stop per row at its length.
    lengths = -(-np.char.str_len(ids.astype(bytes)) // 8)
    for j in range(padded // 8):
        live = lengths > j
        h[live] = mix_array(h[live] ^ words[live, j])
    return h


class _Records(Sequence[tuple]):
    """``index.records[row]``: the compact tuple of a row (built from the columns)."""

    def __init__(self, index: RecordIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return self._index.rows

    @overload
    def __getitem__(self, row: int) -> tuple: ...
    @overload
    def __getitem__(self, row: slice) -> list[tuple]: ...
    def __getitem__(self, row: int | slice) -> tuple | list[tuple]:
        if isinstance(row, slice):
            return [self._index.record(r) for r in range(*row.indices(len(self)))]
        return self._index.record(row)


class _Ids(Sequence[str]):
    def __init__(self, index: RecordIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return self._index.rows

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...
    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self._index.record_id(r) for r in range(*row.indices(len(self)))]
        return self._index.record_id(row)


class RecordIndex:
    """Encoded records with their blocking index (see the module docstring)."""

    def __init__(
        self,
        model: LinkageModel,
        schema: KeySchema | None = None,
        interner: Interner | None = None,
        *,
        side: Side = "spine",
        width: int = BLOOM_BITS,
    ) -> None:
        self.schema = schema if schema is not None else KeySchema(model)
        self.interner = interner if interner is not None else Interner()
        self.side: Side = side
        self.width = width
        self.base: RecordColumns | None = None
        self.delta = RecordColumns(self.schema, width=width)
        self._chunks: list[Blocks] = []
        self._pending: dict[int, list[int]] = {}
        self._pending_size = 0
        self._base_ids: tuple[np.ndarray, np.ndarray] = (
            np.zeros(0, dtype=np.uint64),
            np.zeros(0, dtype=np.int64),
        )
        self._delta_ids: dict[int, int] = {}
        self._alive_count = 0
        self.skipped_blocks = 0
        self.log_position = 0
        """The log position the index reflects (set by whoever applies the log)."""
        self.model = model

    # -- the model -------------------------------------------------------------------------

    @property
    def model(self) -> LinkageModel:
        return self._model

    @model.setter
    def model(self, model: LinkageModel) -> None:
        """A new model version: its blocking rules are compiled for both sides (the blocks
        are rebuilt if the rules changed)."""
        old = getattr(self, "_model", None)
        self._model = model
        rules = list(enumerate(model.blocking_rules))
        self._max_block = [r.max_block for r in model.blocking_rules]
        own = self.side == "spine"
        self._own_keys = compile_record_keys(rules, self.schema, spine_side=own, width=self.width)
        self._query_keys = compile_record_keys(
            rules, self.schema, spine_side=not own, width=self.width
        )
        self.tf_keys = sorted({lv.tf for c in model.comparisons for lv in c.levels if lv.tf})
        if old is not None and old.blocking_rules != model.blocking_rules:
            self._rebuild_blocks()
        if old is None or self.tf_keys != getattr(self, "_tf_built", None):
            self._recount()

    # -- sizes and rows --------------------------------------------------------------------

    def __len__(self) -> int:
        """Records with a current version."""
        return self._alive_count

    @property
    def rows(self) -> int:
        """Rows (versions) held, current or replaced."""
        return (len(self.base) if self.base is not None else 0) + len(self.delta)

    @property
    def _base_rows(self) -> int:
        return len(self.base) if self.base is not None else 0

    def _store(self, row: int) -> tuple[RecordColumns, int]:
        b = self._base_rows
        if row < b:
            assert self.base is not None
            return self.base, row
        return self.delta, row - b

    def record(self, row: int) -> tuple:
        store, r = self._store(row)
        return store.record(r)

    def record_id(self, row: int) -> str:
        store, r = self._store(row)
        return store.record_id(r)

    def records_of(self, rows: np.ndarray) -> list[tuple]:
        """Compact tuples of many rows (ascending or not), in the order given."""
        b = self._base_rows
        if self.base is None or not len(rows):
            return self.delta.records(rows - b)
        lo = rows < b
        if lo.all():
            return self.base.records(rows)
        if not lo.any():
            return self.delta.records(rows - b)
        out: list[tuple] = [()] * len(rows)
        for mask, store, shift in ((lo, self.base, 0), (~lo, self.delta, b)):
            at = np.nonzero(mask)[0]
            for i, rec in zip(at.tolist(), store.records(rows[at] - shift), strict=True):
                out[i] = rec
        return out

    def gather(self, rows: np.ndarray) -> Candidates:
        """The columns of some rows (a record's candidates), for scoring on columns."""
        b = self._base_rows
        if self.base is None or not len(rows) or not (rows < b).any():
            parts = [self.delta.gather(rows - b)]
        elif (rows < b).all():
            parts = [self.base.gather(rows)]
        else:
            # Keep the rows' order: base rows first would reorder them.
            order = np.argsort(rows >= b, kind="stable")
            inverse = np.empty(len(rows), dtype=np.int64)
            inverse[order] = np.arange(len(rows))
            low = rows[rows < b]
            parts = [self.base.gather(low), self.delta.gather(rows[rows >= b] - b)]
            return subset(_concat(parts), inverse)
        return Candidates(*parts[0])

    def ids_of(self, rows: np.ndarray) -> list[str]:
        """Record ids of many rows, in the order given."""
        b = self._base_rows
        if self.base is None:
            raw = self.delta.ids[rows - b]
        else:
            lo = rows < b
            raw = np.empty(len(rows), dtype=object)
            raw[lo] = self.base.ids[rows[lo]]
            raw[~lo] = self.delta.ids[rows[~lo] - b]
        return [bytes(x).decode() for x in raw]

    @property
    def records(self) -> _Records:
        return _Records(self)

    @property
    def ids(self) -> _Ids:
        return _Ids(self)

    def _column(self, name: str) -> np.ndarray:
        parts = [getattr(s, name)[: len(s)] for s in (self.base, self.delta) if s is not None]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def dead(self) -> np.ndarray:
        return self._column("dead")

    @property
    def born(self) -> np.ndarray:
        return self._column("born")

    @property
    def alive(self) -> np.ndarray:
        """``alive[row]``: the row is its record's current version."""
        return self.dead == ALIVE

    def id_column(self) -> np.ndarray:
        """Record ids of every row as bytes (sorts as the ids do)."""
        parts = [s.ids[: len(s)] for s in (self.base, self.delta) if s is not None]
        width = max(p.dtype.itemsize for p in parts)
        parts = [p.astype(f"S{width}") for p in parts]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def rule_blocks(self, rule_no: int, rule: BlockingRule) -> tuple[np.ndarray, np.ndarray]:
        """Current rows under one rule's own-side keys (a rule the model need not have, e.g.
        a training rule): keys sorted, rows ascending within a key."""
        own = self.side == "spine"
        keys, rows = [], []
        for offset, store in ((0, self.base), (self._base_rows, self.delta)):
            if store is not None and len(store):
                rk = rule_keys(rule_no, rule, self.schema, store, spine_side=own, width=self.width)
                keys.append(rk.keys)
                rows.append(rk.rows + offset)
        if not keys:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        k, r = np.concatenate(keys), np.concatenate(rows)
        alive = self._dead_of(r) == ALIVE
        k, r = k[alive], r[alive]
        order = np.lexsort((r, k))
        return k[order], r[order]

    def token_column(self, key: str) -> np.ndarray:
        """Token ids of one token key for every row (0: missing)."""
        i = self.schema.token_keys.index(key)
        parts = [s.tok[: len(s), i] for s in (self.base, self.delta) if s is not None]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _dead_of(self, rows: np.ndarray) -> np.ndarray:
        b = self._base_rows
        if self.base is None:
            return self.delta.dead[rows]
        out = np.empty(len(rows), dtype=np.int64)
        lo = rows < b
        out[lo] = self.base.dead[rows[lo]]
        out[~lo] = self.delta.dead[rows[~lo] - b]
        return out

    def _born_of(self, rows: np.ndarray) -> np.ndarray:
        b = self._base_rows
        if self.base is None:
            return self.delta.born[rows]
        out = np.empty(len(rows), dtype=np.int64)
        lo = rows < b
        out[lo] = self.base.born[rows[lo]]
        out[~lo] = self.delta.born[rows[~lo] - b]
        return out

    def _set_dead(self, row: int, position: int) -> None:
        store, r = self._store(row)
        store.dead[r] = position

    # -- ids ---------------------------------------------------------------------------------

    def position_of(self, record_id: str) -> int | None:
        """The row of ``record_id``'s current version, or None."""
        row = self._current_row(record_id)
        if row is None or int(self._dead_of(np.array([row]))[0]) != ALIVE:
            return None
        return row

    def _current_row(self, record_id: str) -> int | None:
        h = _id_hash(record_id)
        row = self._delta_ids.get(h)
        if row is None:
            hashes, rows = self._base_ids
            i = int(np.searchsorted(hashes, np.uint64(h)))
            if i < len(hashes) and int(hashes[i]) == h:
                row = int(rows[i])
        if row is None or self.record_id(row) != record_id:
            return None
        return row

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and self.position_of(record_id) is not None

    # -- adding ----------------------------------------------------------------------------

    def add(self, rec: EncodedRecord, position: int = 0) -> int:
        """Add a record's version (born at log ``position``); its previous version dies."""
        return self.add_compact(rec.record_id, self.schema.compact(rec, self.interner), position)

    def add_compact(self, record_id: str, compact: tuple, position: int = 0) -> int:
        return self.add_many([record_id], [compact], [position])[0]

    def add_many(
        self,
        record_ids: Sequence[str],
        compacts: Sequence[tuple],
        positions: Sequence[int] | None = None,
    ) -> list[int]:
        """Add many versions at once (keys computed on whole columns when there are many)."""
        if not record_ids:
            return []
        positions = list(positions) if positions is not None else [0] * len(record_ids)
        first = self.delta.append(record_ids, compacts, positions)
        rows = list(range(self._base_rows + first, self._base_rows + first + len(record_ids)))
        for rid, row, pos, compact in zip(record_ids, rows, positions, compacts, strict=True):
            # The previous version (maybe added earlier in this very call) dies here.
            old = self._current_row(rid)
            if old is not None:
                self._kill(old, pos)
            self._delta_ids[_id_hash(rid)] = row
            self._alive_count += 1
            self._count(compact, +1)
        if len(rows) >= 2_000:
            self._add_chunk(self._keys_of_delta(first, first + len(rows)))
        else:
            own = self._own_keys
            for row, compact in zip(rows, compacts, strict=True):
                for key, _rule in own(compact):
                    self._pending.setdefault(key, []).append(row)
                    self._pending_size += 1
            if self._pending_size > _PENDING_MAX:
                self._freeze_pending()
        return rows

    def discard(self, record_id: str, position: int = 0) -> bool:
        """The record's current version dies (the record leaves the index); False if it
        had none."""
        row = self.position_of(record_id)
        if row is None:
            return False
        self._kill(row, position)
        return True

    def _kill(self, row: int, position: int) -> None:
        if int(self._dead_of(np.array([row]))[0]) != ALIVE:
            return
        self._set_dead(row, position)
        self._alive_count -= 1
        self._count(self.record(row), -1)

    # -- term frequencies -------------------------------------------------------------------

    def _count(self, compact: tuple, delta: int) -> None:
        for k in self.tf_keys:
            v = compact[self.schema.slot[k]]
            if v > 0:
                self.tf_counts[k][v] += delta

    def _recount(self) -> None:
        self.tf_counts: dict[str, Counter[int]] = {k: Counter() for k in self.tf_keys}
        self._tf_built = list(self.tf_keys)
        if not self.rows:
            return
        alive = self.alive
        for k in self.tf_keys:
            col = self.token_column(k)[alive]
            values, counts = np.unique(col[col > 0], return_counts=True)
            self.tf_counts[k] = Counter(dict(zip(values.tolist(), counts.tolist(), strict=True)))

    # -- the blocking index ----------------------------------------------------------------

    def _keys_of(self, store: RecordColumns, offset: int) -> tuple[np.ndarray, np.ndarray]:
        own = self.side == "spine"

        def keys_of_rule(numbered: tuple[int, BlockingRule]) -> RuleKeys:
            n, rule = numbered
            return rule_keys(n, rule, self.schema, store, spine_side=own, width=self.width)

        rules = list(enumerate(self._model.blocking_rules))
        if len(store) >= _THREADED_ROWS:
            # Whole-column numpy work lets go of the GIL: two rules at a time (results in
            # rule order, so the same keys in the same order).
            with ThreadPoolExecutor(2) as pool:
                per_rule = list(pool.map(keys_of_rule, rules))
        else:
            per_rule = [keys_of_rule(r) for r in rules]
        return (
            np.concatenate([rk.keys for rk in per_rule]),
            np.concatenate([rk.rows + offset for rk in per_rule]),
        )

    def _keys_of_delta(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        view = _Slice(self.delta, lo, hi)
        keys, rows = self._keys_of(view, 0)  # type: ignore[arg-type]
        return keys, rows + self._base_rows + lo

    def _add_chunk(self, chunk: tuple[np.ndarray, np.ndarray]) -> None:
        self._chunks.append(Blocks.of(*chunk))
        # Merge while the newest chunk is at least half its elder: O(log n) chunks.
        while len(self._chunks) > 1 and 2 * len(self._chunks[-1]) >= len(self._chunks[-2]):
            self._chunks.append(_merged([self._chunks.pop(), self._chunks.pop()]))

    def _freeze_pending(self) -> None:
        if not self._pending:
            return
        keys = np.fromiter((k for k, rows in self._pending.items() for _ in rows), dtype=np.uint64)
        rows = np.fromiter((r for rs in self._pending.values() for r in rs), dtype=np.int64)
        self._pending.clear()
        self._pending_size = 0
        self._add_chunk((keys, rows))

    def _rebuild_blocks(self) -> None:
        self._chunks.clear()
        self._pending.clear()
        self._pending_size = 0
        if self.base is not None:
            self._add_chunk(self._keys_of(self.base, 0))
        if len(self.delta):
            self._add_chunk(self._keys_of_delta(0, len(self.delta)))

    def candidates(self, compact: tuple) -> np.ndarray:
        """Current rows sharing at least one blocking key with a record of the other side,
        ascending. A block holding more than its rule's ``max_block`` rows (versions
        included) is skipped, before any of its rows is read, and counted."""
        pairs = self._query_keys(compact)
        if not pairs:
            return np.zeros(0, dtype=np.int64)
        limits = np.array([self._max_block[rule] for _, rule in pairs])
        rows = self._gather([k for k, _ in pairs], limits)
        if not len(rows):
            return rows
        return np.unique(rows[self._dead_of(rows) == ALIVE])

    def candidates_many(self, records: Sequence[tuple]) -> list[np.ndarray]:
        """``candidates`` of each record (the same rows, ascending), looked up together:
        one search of the blocks for all the records' keys."""
        keys: list[int] = []
        limits: list[int] = []
        owners: list[int] = []
        for k, compact in enumerate(records):
            for key, rule in self._query_keys(compact):
                keys.append(key)
                limits.append(self._max_block[rule])
                owners.append(k)
        empty = np.zeros(0, dtype=np.int64)
        if not keys:
            return [empty] * len(records)
        rows, key_of = self._gather_keyed(keys, np.array(limits))
        alive = self._dead_of(rows) == ALIVE
        owner = np.array(owners, dtype=np.int64)[key_of[alive]]
        # (record, row) as one int64, sorted and made unique: each record's rows ascending.
        span = max(self.rows, 1)
        both = np.unique(owner * span + rows[alive])
        cuts = np.searchsorted(both, np.arange(len(records) + 1, dtype=np.int64) * span)
        found = both % span
        return [found[lo:hi] for lo, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)]

    def _gather(self, keys: Sequence[int], limits: np.ndarray | None = None) -> np.ndarray:
        """Rows under the keys (all versions); with ``limits``, keys whose block holds more
        rows than their limit give none (and are counted in ``skipped_blocks``)."""
        return self._gather_keyed(keys, limits)[0]

    def _gather_keyed(
        self, keys: Sequence[int], limits: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``_gather``'s rows, and for each the position in ``keys`` of the key it is under."""
        q = np.array(keys, dtype=np.uint64)
        ranges = []
        sizes = np.zeros(len(keys), dtype=np.int64)
        for chunk in self._chunks:
            lo, hi = chunk.ranges(q)
            sizes += hi - lo
            ranges.append((chunk.rows, lo, hi))
        pending = [self._pending.get(k) for k in keys] if self._pending else []
        for i, got in enumerate(pending):
            if got:
                sizes[i] += len(got)
        keep = sizes > 0
        if limits is not None:
            too_big = sizes > limits
            if too_big.any():
                self.skipped_blocks += int(np.count_nonzero(too_big))
                keep &= ~too_big
        parts: list[np.ndarray] = []
        key_of: list[np.ndarray] = []
        numbered = np.arange(len(keys))
        for cr, lo, hi in ranges:
            lens = np.where(keep, hi - lo, 0)
            total = int(lens.sum())
            if total:
                starts = np.repeat(lo - np.cumsum(np.concatenate(([0], lens)))[:-1], lens)
                # int64 whatever the chunk's width (a snapshot's rows are int32 on disk)
                parts.append(cr[starts + np.arange(total)].astype(np.int64, copy=False))
                key_of.append(np.repeat(numbered, lens))
        for i, got in enumerate(pending):
            if got and keep[i]:
                parts.append(np.array(got, dtype=np.int64))
                key_of.append(np.full(len(got), i))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if len(parts) == 1:
            return parts[0], key_of[0]
        return np.concatenate(parts), np.concatenate(key_of)

    def matches(self, compact: tuple) -> np.ndarray:
        """Every row (any version, any block size) sharing a key with a record of the other
        side: what a change to that record may touch; ascending."""
        pairs = self._query_keys(compact)
        if not pairs:
            return np.zeros(0, dtype=np.int64)
        return np.unique(self._gather([k for k, _ in pairs]))

    def candidates_by_rule(self, compact: tuple) -> dict[str, set[int]]:
        """Candidates found by each rule separately (for measuring blocking recall)."""
        out: dict[str, set[int]] = {r.name: set() for r in self._model.blocking_rules}
        pairs = self._query_keys(compact)
        if not pairs:
            return out
        for key, rule_no in pairs:
            limit = np.array([self._max_block[rule_no]])
            block = self._gather([key], limit)
            out[self._model.blocking_rules[rule_no].name].update(
                block[self._dead_of(block) == ALIVE].tolist()
            )
        return out

    def changed_between(self, after: int, upto: int) -> np.ndarray:
        """Rows born or killed at a log position in ``(after, upto]``."""
        born, dead = self.born, self.dead
        hit = ((born > after) & (born <= upto)) | ((dead > after) & (dead <= upto))
        return np.nonzero(hit)[0]

    def touched_since(self, compact: tuple, after: int, upto: int) -> bool:
        """Whether a version born or killed in ``(after, upto]`` shares a key with a record
        of the other side (so the record's decision may have changed)."""
        rows = self.matches(compact)
        if not len(rows):
            return False
        born, dead = self._born_of(rows), self._dead_of(rows)
        return bool(np.any(((born > after) & (born <= upto)) | ((dead > after) & (dead <= upto))))

    # -- snapshots --------------------------------------------------------------------------

    def holds_any(self, record_ids: Iterable[str]) -> bool:
        """Whether any row (current or replaced) belongs to one of ``record_ids``."""
        if not self.rows:
            return False
        return bool(_rows_of(self.id_column(), record_ids).any())

    def without(self, record_ids: Iterable[str]) -> RecordIndex:
        """A copy of this index without any row (any version) of ``record_ids``: what a
        snapshot written after an erasure holds. The rows kept keep their born and dead
        positions; the blocks, the id map and the term frequencies are built again."""
        merged = RecordColumns(self.schema, capacity=self.rows or 16, width=self.width)
        for store in (self.base, self.delta):
            if store is not None and len(store):
                _copy_rows(store, merged)
        out = merged.take(~_rows_of(merged.ids[: merged.n], record_ids))
        index = type(self)(
            self._model, self.schema, self.interner, side=self.side, width=self.width
        )
        index.base = out
        index._alive_count = int(np.count_nonzero(out.dead[: out.n] == ALIVE))
        index._rebuild_blocks()
        index._reindex_ids()
        index._recount()
        index.log_position = self.log_position
        return index

    def compact_rows(self) -> None:
        """Merge the delta into one in-memory base (before a snapshot is written)."""
        if not len(self.delta) and self.base is not None:
            return
        merged = RecordColumns(self.schema, capacity=self.rows, width=self.width)
        for store in (self.base, self.delta):
            if store is not None and len(store):
                _copy_rows(store, merged)
        merged.frozen = True
        self.base = merged
        self.delta = RecordColumns(self.schema, width=self.width)
        self._reindex_ids()
        self._freeze_pending()
        if len(self._chunks) > 1:
            self._chunks = [_merged(self._chunks)]

    def _reindex_ids(self) -> None:
        hashes = _id_hashes(self.id_column())
        alive = np.nonzero(self.alive)[0]
        h = hashes[alive]
        order = np.argsort(h, kind="stable")
        self._base_ids = (h[order], alive[order].astype(np.int64))
        self._delta_ids = {}

    def save(self, folder: Path) -> None:
        """Write the index (rows, blocking chunk, ids) as a snapshot folder at its position."""
        self.compact_rows()
        assert self.base is not None
        folder.mkdir(parents=True, exist_ok=True)
        self.base.save(folder / "rows")
        blocks = self._chunks[0] if self._chunks else Blocks.empty()
        if blocks.starts is None:  # mapped from a snapshot of the earlier layout
            blocks = _merged([blocks])
        assert blocks.starts is not None
        np.save(folder / "block_keys.npy", blocks.keys)
        np.save(folder / "block_starts.npy", _narrow_rows(blocks.starts))
        np.save(folder / "block_rows.npy", _narrow_rows(blocks.rows))
        np.save(folder / "id_hashes.npy", self._base_ids[0])
        np.save(folder / "id_rows.npy", _narrow_rows(self._base_ids[1]))
        (folder / "index.json").write_text(
            json.dumps(
                {
                    "position": self.log_position,
                    "side": self.side,
                    "rules": [repr(r) for r in self._model.blocking_rules],
                    "records": len(self),
                    "rows": self.rows,
                }
            )
        )

    @classmethod
    def build(
        cls,
        model: LinkageModel,
        stores: Sequence[RecordColumns],
        *,
        side: Side = "spine",
    ) -> RecordIndex:
        """An index of the rows of ``stores`` (laid out for ``model``'s keys), in one go:
        rows copied into one base, every rule's keys computed on whole columns and sorted,
        ids hashed in bulk. A record found twice keeps its last row."""
        index = cls(model, stores[0].schema if stores else None, side=side)
        merged = RecordColumns(index.schema, capacity=sum(len(s) for s in stores) or 16)
        for store in stores:
            _copy_rows(store, merged)
        index.width = merged.width
        hashes = _id_hashes(merged.ids[: len(merged)])
        # Later rows of an id win (stable: the last occurrence stays alive).
        order = np.argsort(hashes, kind="stable")
        last = np.ones(len(order), dtype=bool)
        last[:-1] = hashes[order][1:] != hashes[order][:-1]
        dead = np.ones(len(merged), dtype=bool)
        dead[order[last]] = False
        merged.dead[: len(merged)][dead] = 0
        merged.frozen = True
        index.base = merged
        index._alive_count = int(np.count_nonzero(~dead))
        index._rebuild_blocks()
        index._reindex_ids()
        index._recount()
        return index

    @classmethod
    def load(
        cls, folder: Path, model: LinkageModel, *, side: Side = "spine", mmap: bool = True
    ) -> RecordIndex:
        """An index from a snapshot folder (memory-mapped); ValueError if it was built for
        other blocking rules or another key layout."""
        meta = json.loads((folder / "index.json").read_text())
        if meta["side"] != side or meta["rules"] != [repr(r) for r in model.blocking_rules]:
            raise ValueError("the snapshot was built for other blocking rules")
        index = cls(model, side=side)
        index.base = RecordColumns.load(folder / "rows", index.schema, mmap=mmap)
        index.width = index.base.width

        def load(name: str) -> np.ndarray:
            array = np.load(folder / name, mmap_mode="r" if mmap else None)
            return np.asarray(array)  # a plain ndarray over the mapping (see columns._load)

        # Distinct keys with where their rows start; a snapshot written before that layout
        # has a key per row (no block_starts.npy) and is searched as it was.
        starts = load("block_starts.npy") if (folder / "block_starts.npy").exists() else None
        index._chunks = [Blocks(load("block_keys.npy"), load("block_rows.npy"), starts)]
        index._base_ids = (load("id_hashes.npy"), load("id_rows.npy"))
        index.log_position = int(meta["position"])
        index._alive_count = int(np.count_nonzero(index.alive))
        index._recount()
        return index

    def nbytes(self) -> dict[str, int]:
        """Bytes held: rows (columns), blocking chunks, id map; anonymous or mapped."""
        rows = sum(s.nbytes() for s in (self.base, self.delta) if s is not None)
        blocks = sum(chunk.nbytes for chunk in self._chunks)
        ids = self._base_ids[0].nbytes + self._base_ids[1].nbytes
        return {"rows": rows, "blocks": blocks, "ids": ids}

    def iter_alive(self) -> Iterator[int]:
        yield from np.nonzero(self.alive)[0].tolist()


def _merged(chunks: Sequence[Blocks]) -> Blocks:
    """One chunk of the pairs of several."""
    pairs = [chunk.pairs() for chunk in chunks]
    return Blocks.of(np.concatenate([k for k, _ in pairs]), np.concatenate([r for _, r in pairs]))


def _narrow_rows(rows: np.ndarray) -> np.ndarray:
    """Row numbers as int32 when they fit (a snapshot's postings: half the bytes of int64)."""
    if not len(rows) or int(rows.max()) < np.iinfo(np.int32).max:
        return rows.astype(np.int32)
    return rows


class _Slice:
    """Rows ``lo:hi`` of a store, for computing keys of rows just added."""

    def __init__(self, store: RecordColumns, lo: int, hi: int) -> None:
        self._s, self._lo, self._hi = store, lo, hi
        self.tok = store.tok[lo:hi]
        self.bloom = store.bloom[lo:hi]
        self.pop = store.pop[lo:hi]

    def __len__(self) -> int:
        return self._hi - self._lo

    def list_offsets(self, i: int) -> np.ndarray:
        return self._s.list_offsets(i)[self._lo : self._hi + 1]

    def list_values(self, i: int) -> np.ndarray:
        return self._s.list_values(i)

    def record(self, row: int) -> tuple:
        return self._s.record(self._lo + row)


def _rows_of(ids: np.ndarray, record_ids: Iterable[str]) -> np.ndarray:
    """One bool per entry of ``ids`` (a bytes column): whether it is one of ``record_ids``."""
    wanted = sorted({i.encode() for i in record_ids})
    if not wanted or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    width = max(ids.dtype.itemsize, max(len(w) for w in wanted))
    return np.isin(ids.astype(f"S{width}"), np.array(wanted, dtype=f"S{width}"))


def _copy_rows(src: RecordColumns, dst: RecordColumns) -> None:
    n, at = len(src), len(dst)
    dst._reserve(n, [int(src.list_offsets(i)[n]) for i in range(len(src.schema.list_keys))])
    for name in ("tok", "bloom", "pop", "flags", "born", "dead"):
        getattr(dst, name)[at : at + n] = getattr(src, name)[:n]
    if src.ids.dtype.itemsize > dst.ids.dtype.itemsize:
        dst.ids = dst.ids.astype(src.ids.dtype)
    dst.ids[at : at + n] = src.ids[:n]
    for i in range(len(src.schema.list_keys)):
        off, val = src.list_offsets(i), src.list_values(i)
        base = int(dst._loff[i][at])
        used = int(off[n])
        dst._lval[i][base : base + used] = val[:used]
        shift = base - int(off[0])  # offsets may be int32 in a snapshot
        dst._loff[i][at + 1 : at + n + 1] = off[1 : n + 1].astype(np.int64) + shift
    dst.n = at + n


def _concat(parts: list[tuple[Any, ...]]) -> Candidates:
    first, second = parts
    shift = len(first[0])
    lists = [
        (np.concatenate((o1, o2 + shift)), np.concatenate((v1, v2)))
        for (o1, v1), (o2, v2) in zip(first[1], second[1], strict=True)
    ]
    width = max(first[5].dtype.itemsize, second[5].dtype.itemsize)
    return Candidates(
        np.concatenate((first[0], second[0])),
        lists,
        np.concatenate((first[2], second[2])),
        np.concatenate((first[3], second[3])),
        np.concatenate((first[4], second[4])),
        np.concatenate((first[5].astype(f"S{width}"), second[5].astype(f"S{width}"))),
    )


SpineIndex = RecordIndex
"""The spine's index (spine people under each rule's spine keys): the usual name."""
