"""Scoring and deciding on numpy columns: all of a record's candidates at once.

The reference engine (``scoring.compile_vector`` and ``Linker``) scores one pair at a time on
compact tuples; a candidate is first turned into a tuple from the index's columns, and both
steps cost tens of microseconds per candidate in Python. At a few million spine people a
common name or date of birth brings hundreds of candidates, so this module evaluates every
level predicate, weight and guard of the model over the candidates' columns in a few numpy
operations per level, then takes the same decision.

It is the same arithmetic in the same order (comparisons summed in model order from 0.0, the
prior added last, guards applied in turn, term-frequency weights from ``math.log2``), so the
weights, probabilities and decisions are bit for bit those of the reference; a test holds the
two equal on synthetic populations. A predicate kind it does not know makes it decline
(``VectorLinker.supported``), and ``Linker`` then uses the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np

from services.link.domain.columns import FLAG_ORDER
from services.link.domain.decision import LinkDecision, record_log2_odds
from services.link.domain.records import KeySchema
from services.link.domain.scoring import CompiledModel, probability

__all__ = [
    "FLAG_BIT",
    "Candidates",
    "VectorLinker",
    "dice_slots",
    "level_table",
    "subset",
    "windows",
]

FLAG_BIT = {f.value: 1 << i for i, f in enumerate(FLAG_ORDER)}
"""Bit of each quality flag (by its value) in the flags column."""


class Candidates:
    """The columns of a record's candidate rows, gathered once."""

    __slots__ = ("blooms", "flags", "ids", "lists", "n", "pops", "tok")

    def __init__(
        self,
        tok: np.ndarray,
        lists: list[tuple[np.ndarray, np.ndarray]],
        blooms: np.ndarray,
        pops: np.ndarray,
        flags: np.ndarray,
        ids: np.ndarray,
    ) -> None:
        self.n = len(tok)
        self.tok = tok  # int64 (n, token slots)
        self.lists = lists  # per list slot: (owner row, value) of every value
        self.blooms = blooms  # uint64 (n, bloom slots, words)
        self.pops = pops  # int64 (n, bloom slots)
        self.flags = flags  # int64 (n,)
        self.ids = ids  # bytes (n,)


Vec = Callable[[tuple, Candidates, dict[int, np.ndarray]], np.ndarray]


class _Unsupported(Exception):
    pass


def _has_row(n: int, owner: np.ndarray, hit: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[owner[hit]] = True
    return out


def _member(values: np.ndarray, wanted: frozenset[int]) -> np.ndarray:
    """``np.isin(values, wanted)`` for the few values of one record's token set (an equality
    per value is several times quicker than ``isin`` at these sizes)."""
    out = np.zeros(len(values), dtype=bool)
    for v in wanted:
        out |= values == v
    return out


def level_table(wanted: frozenset[int] | set[int], n_levels: int) -> np.ndarray:
    """A lookup from level (``-1`` null .. ``n_levels - 1``) to whether it is in ``wanted``:
    ``table[levels + 1]``."""
    table = np.zeros(n_levels + 1, dtype=bool)
    for li in wanted:
        table[li + 1] = True
    return table


def _predicate(pred: dict[str, Any], schema: KeySchema) -> Vec:
    """A predicate as a function of (incoming tuple, candidates, dice by bloom slot)."""
    n_tok = len(schema.token_keys)
    if "eq" in pred:
        keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"], pred["eq"]]
        i, j = schema.slot[keys[0]], schema.slot[keys[-1]]

        def eq(a: tuple, c: Candidates, _d: dict[int, np.ndarray]) -> np.ndarray:
            v = a[i]
            if v <= 0:
                return np.zeros(c.n, dtype=bool)
            return c.tok[:, j] == v

        return eq
    if "in" in pred:
        left, right = pred["in"]
        i, li = schema.slot[left], schema.list_slot[right]
        lj = li - n_tok

        def in_(a: tuple, c: Candidates, _d: dict[int, np.ndarray]) -> np.ndarray:
            out = np.zeros(c.n, dtype=bool)
            v = a[i]
            if v > 0:
                owner, values = c.lists[lj]
                out |= _has_row(c.n, owner, values == v)
            mine = a[li]
            if mine:
                col = c.tok[:, i]
                out |= (col > 0) & _member(col, mine)
            return out

        return in_
    if "overlap" in pred:
        keys = pred["overlap"] if isinstance(pred["overlap"], list) else [pred["overlap"]] * 2
        i, j = schema.list_slot[keys[0]], schema.list_slot[keys[-1]]
        lj = j - n_tok

        def overlap(a: tuple, c: Candidates, _d: dict[int, np.ndarray]) -> np.ndarray:
            mine = a[i]
            if not mine:
                return np.zeros(c.n, dtype=bool)
            owner, values = c.lists[lj]
            return _has_row(c.n, owner, _member(values, mine))

        return overlap
    if "dice" in pred:
        k = schema.bloom_slot[pred["dice"]]
        least = float(pred["min"])
        return lambda _a, _c, d: d[k] >= least
    if "flag" in pred:
        name = str(pred["flag"])
        bit = FLAG_BIT.get(name, 0)
        f = schema.flags_slot

        def flag(a: tuple, c: Candidates, _d: dict[int, np.ndarray]) -> np.ndarray:
            if name in a[f]:
                return np.ones(c.n, dtype=bool)
            return (c.flags & bit) != 0

        return flag
    if "all" in pred or "any" in pred:
        parts = [_predicate(p, schema) for p in pred.get("all", pred.get("any", []))]
        both = "all" in pred

        def combine(a: tuple, c: Candidates, d: dict[int, np.ndarray]) -> np.ndarray:
            out = np.full(c.n, both, dtype=bool)
            for p in parts:
                out = (out & p(a, c, d)) if both else (out | p(a, c, d))
            return out

        return combine
    if "not" in pred:
        inner = _predicate(pred["not"], schema)
        return lambda a, c, d: ~inner(a, c, d)
    raise _Unsupported(f"no vectorised form for {pred!r}")


def dice_slots(pred: dict[str, Any], schema: KeySchema) -> set[int]:
    """The Bloom slots whose Dice coefficient a predicate reads."""
    if "dice" in pred:
        return {schema.bloom_slot[pred["dice"]]}
    out: set[int] = set()
    for p in pred.get("all", pred.get("any", [])):
        out |= dice_slots(p, schema)
    if "not" in pred:
        out |= dice_slots(pred["not"], schema)
    return out


class VectorLinker:
    """Scores and decides a record against all its candidates on columns (see module)."""

    def __init__(self, linker: Any) -> None:
        self.linker = linker
        compiled: CompiledModel = linker.compiled
        self.compiled = compiled
        schema = compiled.schema
        self.schema = schema
        self.n_tok = len(schema.token_keys)
        self.n_list = len(schema.list_keys)
        self.bloom_at = self.n_tok + self.n_list
        self.supported = True
        try:
            self.levels = [
                [_predicate(lv.when, schema) for lv in c.levels] for c in compiled.model.comparisons
            ]
            variant = compiled.model.notes.get("deterministic", {}).get("forename_variant")
            self.variant = _predicate(variant, schema) if variant else None
        except _Unsupported:
            self.supported = False
            return
        self.dice = [
            sorted(set().union(*(dice_slots(lv.when, schema) for lv in c.levels)))
            for c in compiled.model.comparisons
        ]
        if self.variant is not None:
            self.variant_dice = sorted(dice_slots(variant, schema))
        self.nulls = []
        for c in compiled.model.comparisons:
            needs = [schema.slot.get(k, schema.list_slot.get(k)) for k in c.needs]
            any_slots = [
                schema.slot.get(k, schema.list_slot.get(k, schema.bloom_slot.get(k)))
                for k in c.needs_any
            ]
            flags = [(str(f), FLAG_BIT.get(str(f), 0)) for f in c.null_if_flag]
            self.nulls.append((needs, any_slots, flags))
        self.weights = [np.array([*w, 0.0]) for w in compiled.weights]  # [-1] is null
        self.weights_household = [np.array([*w, 0.0]) for w in compiled.weights_household]
        n_levels = [c.n_levels for c in compiled.model.comparisons]
        ci = compiled.context_index
        self.context = level_table(compiled.context_levels, n_levels[ci]) if ci >= 0 else None
        self.guard_tables = [
            [(gi, level_table(wanted, n_levels[gi])) for gi, wanted in conds]
            for conds, _hh, _cap in compiled.guards
        ]

    # -- gathering ---------------------------------------------------------------------------

    def _truthy(self, a: tuple, c: Candidates, slot: int) -> tuple[bool, np.ndarray]:
        """Whether the incoming slot and each candidate's slot hold something."""
        if slot < self.n_tok:
            return bool(a[slot]), c.tok[:, slot] != 0
        if slot < self.bloom_at:
            owner, _values = c.lists[slot - self.n_tok]
            return bool(a[slot]), np.bincount(owner, minlength=c.n) > 0
        return a[slot] is not None, c.pops[:, slot - self.bloom_at] > 0

    def _dice(self, a: tuple, c: Candidates, slot: int) -> np.ndarray:
        mine = a[slot]
        f = slot - self.bloom_at
        if mine is None:
            return np.zeros(c.n)
        width = c.blooms.shape[2] * 8
        words = np.frombuffer(mine[0].to_bytes(width, "big"), dtype=np.uint64)
        inter = np.bitwise_count(c.blooms[:, f, :] & words).sum(axis=1, dtype=np.int64)
        pops = c.pops[:, f]
        out = np.zeros(c.n)
        ok = pops > 0
        out[ok] = 2.0 * inter[ok] / (mine[1] + pops[ok])
        return out

    # -- scoring -----------------------------------------------------------------------------

    def levels_of(self, a: tuple, c: Candidates) -> np.ndarray:
        """Every comparison's level for every candidate (``-1``: null), (comparisons, n)."""
        fs = self.schema.flags_slot
        out = np.empty((len(self.levels), c.n), dtype=np.int64)
        for ci, preds in enumerate(self.levels):
            needs, any_slots, flags = self.nulls[ci]
            null = np.zeros(c.n, dtype=bool)
            for s in needs:
                mine, theirs = self._truthy(a, c, s)
                null |= ~theirs if mine else True
            if any_slots:
                some = np.zeros(c.n, dtype=bool)
                for s in any_slots:
                    mine, theirs = self._truthy(a, c, s)
                    if mine:
                        some |= theirs
                null |= ~some
            for name, bit in flags:
                null |= True if name in a[fs] else (c.flags & bit) != 0
            dice = {k: self._dice(a, c, k) for k in self.dice[ci]}
            level = np.full(c.n, len(preds), dtype=np.int64)
            for li in range(len(preds) - 1, -1, -1):  # the first level that holds wins
                level[preds[li](a, c, dice)] = li
            level[null] = -1
            out[ci] = level
        return out

    def log2_odds(self, a: tuple, c: Candidates, levels: np.ndarray) -> np.ndarray:
        """Prior plus weights, capped by guards: ``CompiledModel.log2_odds`` per candidate."""
        m = self.compiled
        ctx = (
            self.context[levels[m.context_index] + 1]
            if self.context is not None
            else np.zeros(c.n, dtype=bool)
        )
        total = np.zeros(c.n)
        for ci in range(len(self.levels)):
            level = levels[ci]
            w = np.where(ctx, self.weights_household[ci][level], self.weights[ci][level])
            if m.tf:
                for li in range(len(self.compiled.model.comparisons[ci].levels)):
                    t = m.tf.get((ci, li))
                    if t is None:
                        continue
                    count = t[0].get(a[m.tf_slot[(ci, li)]])
                    if count:
                        u = max(count / m.tf_total, m.model.tf_min_u)
                        w = np.where((~ctx) & (level == li), t[1] - math.log2(u), w)
            total = total + w
        odds = m.prior + total
        for (_conds, in_household, cap), tables in zip(m.guards, self.guard_tables, strict=True):
            hit = odds > cap
            if in_household:
                hit &= ctx
            for ci, table in tables:
                hit &= table[levels[ci] + 1]
            odds = np.where(hit, cap, odds)
        return odds

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, record_id: str, a: tuple, c: Candidates) -> Any:
        """``Linker.link_compact``'s decision, from the columns of every candidate."""
        levels = self.levels_of(a, c)
        return self.decide_scored(record_id, a, c, levels, self.log2_odds(a, c, levels))

    def decide_scored(
        self, record_id: str, a: tuple, c: Candidates, levels: np.ndarray, odds: np.ndarray
    ) -> Any:
        """The decision from the candidates' levels (comparisons, n) and log-odds, however
        they were computed (here, or for many records at once by ``pairwise``)."""
        lk = self.linker
        # Highest weight wins; ties go to the smallest spine id (as the reference sorts).
        order = np.lexsort((c.ids, -odds))
        w = odds[order].tolist()
        sids = [bytes(x).decode() for x in c.ids[order]]
        n = c.n
        flags = a[lk.fs]
        tok = c.tok[order]
        levels = levels[:, order]

        if lk.nhs_slot >= 0 and a[lk.nhs_slot] > 0 and not (lk.nhs_refused & flags):
            hits = np.nonzero(tok[:, lk.nhs_slot] == a[lk.nhs_slot])[0]
            if len(hits) == 1:
                h = int(hits[0])
                if not lk.contradicts_nhs(lambda ci: int(levels[ci, h])):
                    return LinkDecision(record_id, sids[h], 1, 1.0, w[h], sids[h], n)

        if lk.exact_slots and not (lk.exact_block & flags):
            agree = np.stack([(tok[:, s] == a[s]) & (a[s] > 0) for s in lk.exact_slots], axis=1)
            fives = np.nonzero(agree.all(axis=1))[0]
            if len(fives) == 1:
                h = int(fives[0])
                return LinkDecision(record_id, sids[h], 4, 1.0, w[h], sids[h], n)
            if not len(fives) and self.variant is not None:
                k = lk.exact_slots.index(lk.forename_slot)
                near = (agree.sum(axis=1) == len(lk.exact_slots) - 1) & ~agree[:, k]
                if near.any():
                    rows = np.nonzero(near)[0]
                    sub = subset(c, order[rows])
                    dice = {s: self._dice(a, sub, s) for s in self.variant_dice}
                    ok = rows[self.variant(a, sub, dice)]
                    if len(ok) == 1:
                        h = int(ok[0])
                        return LinkDecision(
                            record_id, sids[h], 39, max(probability(w[h]), 0.9), w[h], sids[h], n
                        )

        th = self.compiled.model.thresholds
        best, sid = w[0], sids[0]
        if th.one_to_one:
            rodds, alone = record_log2_odds(w, lk.link_rate)
            p = probability(rodds)
            if p >= th.accept:
                return LinkDecision(record_id, sid, 50, p, best, sid, n)
            if probability(alone) >= th.accept:
                return LinkDecision(record_id, None, 91, p, best, sid, n)
        else:
            p = probability(best)
            if p >= th.accept:
                if n > 1:
                    w2 = w[1]
                    if probability(w2) >= th.review and best - w2 < th.margin_bits:
                        return LinkDecision(record_id, None, 91, p, best, sid, n)
                return LinkDecision(record_id, sid, 50, p, best, sid, n)
        if p >= th.review:
            return LinkDecision(record_id, None, 90, p, best, sid, n)
        return LinkDecision(record_id, None, 98, p, best, sid, n)


def subset(c: Candidates, rows: np.ndarray) -> Candidates:
    """Some of the candidates (``rows`` index ``c``), their lists renumbered (owners
    ascending)."""
    where = np.full(c.n, -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    lists = []
    for owner, values in c.lists:
        keep = where[owner] >= 0
        mine, kept = where[owner[keep]], values[keep]
        # Owners ascending, as ``gather`` makes them (``windows`` relies on it).
        by_owner = np.argsort(mine, kind="stable")
        lists.append((mine[by_owner], kept[by_owner]))
    return Candidates(c.tok[rows], lists, c.blooms[rows], c.pops[rows], c.flags[rows], c.ids[rows])


def windows(c: Candidates, sizes: list[int]) -> list[Candidates]:
    """The candidates in consecutive runs of ``sizes`` (each record's, among many records'
    gathered at once), their lists renumbered; every list's owners must be ascending (as
    ``gather`` makes them)."""
    edges = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    cuts = [np.searchsorted(owner, edges).tolist() for owner, _values in c.lists]
    out = []
    bounds = edges.tolist()
    for r, (lo, hi) in enumerate(pairwise(bounds)):
        lists = [
            (owner[at[r] : at[r + 1]] - lo, values[at[r] : at[r + 1]])
            for (owner, values), at in zip(c.lists, cuts, strict=True)
        ]
        out.append(
            Candidates(
                c.tok[lo:hi], lists, c.blooms[lo:hi], c.pops[lo:hi], c.flags[lo:hi], c.ids[lo:hi]
            )
        )
    return out
