"""Comparison levels and weights of many record pairs at once, on columns.

Training compares hundreds of thousands of pairs: random spine pairs for u, blocked incoming
x spine pairs for m, every candidate of a sample of records for the link rate. Pair by pair
(``CompiledModel.vector`` on compact tuples read back from the index's columns) each costs
tens of microseconds, most of it in making the tuples. Here both sides of every pair are
gathered as columns (two :class:`~services.link.domain.vectorised.Candidates` of the same
length, pair ``k`` being row ``k`` of each) and each level predicate is a few numpy
operations over all of them.

The levels are ``CompiledModel.vector``'s and the log-odds ``CompiledModel.log2_odds``'s, bit
for bit (the same predicates, comparisons summed in model order from 0.0, the prior added
last, guards in turn, term-frequency weights from ``math.log2``); a test holds them equal on
a synthetic population. ``vectorised`` does the same for one record against its candidates,
with a scalar on one side; this module has columns on both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from services.link.domain.records import KeySchema
from services.link.domain.scoring import CompiledModel
from services.link.domain.vectorised import FLAG_BIT, Candidates, dice_slots, level_table

__all__ = ["PairLevels"]

Dice = dict[int, np.ndarray]
Pred = Callable[[Candidates, Candidates, Dice], np.ndarray]


def _in_list(tok: np.ndarray, lists: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per pair, whether this side's token is among the other side's values (and set)."""
    owner, values = lists
    out = np.zeros(len(tok), dtype=bool)
    out[owner[values == tok[owner]]] = True
    return out & (tok > 0)


def _overlap(
    left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray], n: int
) -> np.ndarray:
    """Per pair, whether the two sides' token sets share a value. A set holds each value
    once, so after sorting both sides' (pair, value) entries together an entry equal to the
    next is one of each side."""
    owners = np.concatenate((left[0], right[0]))
    values = np.concatenate((left[1], right[1]))
    order = np.lexsort((values, owners))
    o, v = owners[order], values[order]
    same = (o[1:] == o[:-1]) & (v[1:] == v[:-1])
    out = np.zeros(n, dtype=bool)
    out[o[1:][same]] = True
    return out


def _predicate(pred: dict[str, Any], schema: KeySchema) -> Pred:
    """A predicate as a function of (left columns, right columns, Dice by Bloom slot)."""
    n_tok = len(schema.token_keys)
    if "eq" in pred:
        keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"], pred["eq"]]
        i, j = schema.slot[keys[0]], schema.slot[keys[-1]]

        def eq(a: Candidates, b: Candidates, _d: Dice) -> np.ndarray:
            mine = a.tok[:, i]
            return (mine > 0) & (mine == b.tok[:, j])

        return eq
    if "in" in pred:
        left, right = pred["in"]
        i, lj = schema.slot[left], schema.list_slot[right] - n_tok

        def in_(a: Candidates, b: Candidates, _d: Dice) -> np.ndarray:
            return _in_list(a.tok[:, i], b.lists[lj]) | _in_list(b.tok[:, i], a.lists[lj])

        return in_
    if "overlap" in pred:
        keys = pred["overlap"] if isinstance(pred["overlap"], list) else [pred["overlap"]] * 2
        i, j = schema.list_slot[keys[0]] - n_tok, schema.list_slot[keys[-1]] - n_tok
        return lambda a, b, _d: _overlap(a.lists[i], b.lists[j], a.n)
    if "dice" in pred:
        k = schema.bloom_slot[pred["dice"]]
        least = float(pred["min"])
        return lambda _a, _b, d: d[k] >= least
    if "flag" in pred:
        bit = FLAG_BIT.get(str(pred["flag"]), 0)
        return lambda a, b, _d: ((a.flags | b.flags) & bit) != 0
    if "all" in pred or "any" in pred:
        parts = [_predicate(p, schema) for p in pred.get("all", pred.get("any", []))]
        both = "all" in pred

        def combine(a: Candidates, b: Candidates, d: Dice) -> np.ndarray:
            out = np.full(a.n, both, dtype=bool)
            for p in parts:
                out = (out & p(a, b, d)) if both else (out | p(a, b, d))
            return out

        return combine
    if "not" in pred:
        inner = _predicate(pred["not"], schema)
        return lambda a, b, d: ~inner(a, b, d)
    raise ValueError(f"unknown predicate {pred!r}")


class PairLevels:
    """Every comparison's level, and the log-odds, of many pairs at once (see module)."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        model, schema = compiled.model, compiled.schema
        self.schema = schema
        self.n_tok = len(schema.token_keys)
        self.bloom_at = self.n_tok + len(schema.list_keys)
        self.predicates = [
            [_predicate(lv.when, schema) for lv in c.levels] for c in model.comparisons
        ]
        self.dice_slots = sorted(
            set().union(
                *(dice_slots(lv.when, schema) for c in model.comparisons for lv in c.levels)
            )
        )
        self.nulls = []
        for c in model.comparisons:
            needs = [schema.slot.get(k, schema.list_slot.get(k)) for k in c.needs]
            any_slots = [
                schema.slot.get(k, schema.list_slot.get(k, schema.bloom_slot.get(k)))
                for k in c.needs_any
            ]
            bits = sum(FLAG_BIT.get(str(f), 0) for f in c.null_if_flag)
            self.nulls.append((needs, any_slots, bits))
        self.n_levels = [c.n_levels for c in model.comparisons]
        self.weights = [np.array([*w, 0.0]) for w in compiled.weights]  # [-1]: null, nothing
        self.weights_household = [np.array([*w, 0.0]) for w in compiled.weights_household]

    def _holds(self, c: Candidates, slot: int) -> np.ndarray:
        """Whether each row's slot holds something (a token, a non-empty set, an encoding)."""
        if slot < self.n_tok:
            return c.tok[:, slot] != 0
        if slot < self.bloom_at:
            owner, _values = c.lists[slot - self.n_tok]
            return np.bincount(owner, minlength=c.n) > 0
        return c.pops[:, slot - self.bloom_at] > 0

    def _dice(self, a: Candidates, b: Candidates, slot: int) -> np.ndarray:
        f = slot - self.bloom_at
        inter = np.bitwise_count(a.blooms[:, f, :] & b.blooms[:, f, :]).sum(axis=1, dtype=np.int64)
        pa, pb = a.pops[:, f], b.pops[:, f]
        out = np.zeros(a.n)
        ok = (pa > 0) & (pb > 0)
        out[ok] = 2.0 * inter[ok] / (pa[ok] + pb[ok])
        return out

    def levels(self, a: Candidates, b: Candidates) -> np.ndarray:
        """Each comparison's level (``-1``: null) of pairs ``(a[k], b[k])``: (comparisons, n)."""
        if a.n != b.n:
            raise ValueError(f"{a.n} left rows against {b.n} right rows")
        dice = {k: self._dice(a, b, k) for k in self.dice_slots}
        flags = a.flags | b.flags
        out = np.empty((len(self.predicates), a.n), dtype=np.int64)
        for ci, preds in enumerate(self.predicates):
            needs, any_slots, bits = self.nulls[ci]
            null = (flags & bits) != 0
            for s in needs:
                null |= ~(self._holds(a, s) & self._holds(b, s))
            if any_slots:
                some = np.zeros(a.n, dtype=bool)
                for s in any_slots:
                    some |= self._holds(a, s) & self._holds(b, s)
                null |= ~some
            level = np.full(a.n, len(preds), dtype=np.int64)
            for li in range(len(preds) - 1, -1, -1):  # the first level that holds wins
                level[preds[li](a, b, dice)] = li
            level[null] = -1
            out[ci] = level
        return out

    def log2_odds(self, a: Candidates, levels: np.ndarray) -> np.ndarray:
        """``CompiledModel.log2_odds`` of each pair from its levels; term frequencies are
        those of the left side's tokens (the incoming record's, as the reference reads)."""
        m = self.compiled
        n = levels.shape[1]
        ci_ctx = m.context_index
        if ci_ctx >= 0:
            ctx = level_table(m.context_levels, self.n_levels[ci_ctx])[levels[ci_ctx] + 1]
        else:
            ctx = np.zeros(n, dtype=bool)
        total = np.zeros(n)
        for ci, level in enumerate(levels):
            w = np.where(ctx, self.weights_household[ci][level], self.weights[ci][level])
            for li in range(len(m.model.comparisons[ci].levels)):
                t = m.tf.get((ci, li))
                if t is None:
                    continue
                sel = np.nonzero(~ctx & (level == li))[0]
                if not len(sel):
                    continue
                # Each distinct token's weight once (a chunk's pairs share few names).
                tokens, which = np.unique(a.tok[sel, m.tf_slot[(ci, li)]], return_inverse=True)
                counts = [t[0].get(tok) for tok in tokens.tolist()]
                weight = [
                    t[1] - math.log2(max(c / m.tf_total, m.model.tf_min_u)) if c else math.nan
                    for c in counts
                ]
                held = np.array([bool(c) for c in counts])[which]
                w[sel[held]] = np.array(weight)[which][held]
            total = total + w
        odds = m.prior + total
        for conds, in_household, cap in m.guards:
            hit = odds > cap
            if in_household:
                hit &= ctx
            for ci, wanted in conds:
                hit &= level_table(wanted, self.n_levels[ci])[levels[ci] + 1]
            odds = np.where(hit, cap, odds)
        return odds
