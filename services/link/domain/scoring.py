"""The engine: compiles a :class:`LinkageModel` into closures and scores record pairs.

Each comparison becomes one function ``(incoming, spine) -> level index`` (``-1`` for null);
weights are precomputed tables (bits, log2 m/u) per level, with a second table used when the
pair shares a household (``u_household``) and per-token term-frequency weights for exact name
agreement. Scoring a pair is a handful of int comparisons and popcounts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from services.link.domain.model import Comparison, LinkageModel
from services.link.domain.records import KeySchema

__all__ = ["CompiledModel", "compile_predicate", "compile_vector", "probability"]

Pair = Callable[[tuple, tuple], bool]


def probability(log2_odds: float) -> float:
    """Match probability from log2 odds, numerically safe at both ends."""
    if log2_odds > 60:
        return 1.0
    if log2_odds < -60:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** (-log2_odds))


def compile_predicate(pred: dict[str, Any], schema: KeySchema) -> Pair:
    """A predicate dict as a function of (incoming, spine) compact tuples."""
    if "eq" in pred:
        keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"], pred["eq"]]
        i, j = schema.slot[keys[0]], schema.slot[keys[-1]]
        return lambda a, b: a[i] != 0 and a[i] == b[j]
    if "in" in pred:
        left, right = pred["in"]
        i, li = schema.slot[left], schema.list_slot[right]
        return lambda a, b: (a[i] != 0 and a[i] in b[li]) or (b[i] != 0 and b[i] in a[li])
    if "overlap" in pred:
        keys = pred["overlap"] if isinstance(pred["overlap"], list) else [pred["overlap"]] * 2
        i, j = schema.list_slot[keys[0]], schema.list_slot[keys[-1]]
        return lambda a, b: not a[i].isdisjoint(b[j])
    if "dice" in pred:
        k = schema.bloom_slot[pred["dice"]]
        threshold = float(pred["min"])

        def dice_at_least(a: tuple, b: tuple) -> bool:
            x, y = a[k], b[k]
            if x is None or y is None:
                return False
            return 2 * (x[0] & y[0]).bit_count() >= threshold * (x[1] + y[1])

        return dice_at_least
    if "flag" in pred:
        name, f = pred["flag"], schema.flags_slot
        return lambda a, b: name in a[f] or name in b[f]
    if "all" in pred:
        parts = [compile_predicate(p, schema) for p in pred["all"]]
        return lambda a, b: all(p(a, b) for p in parts)
    if "any" in pred:
        parts = [compile_predicate(p, schema) for p in pred["any"]]
        return lambda a, b: any(p(a, b) for p in parts)
    if "not" in pred:
        inner = compile_predicate(pred["not"], schema)
        return lambda a, b: not inner(a, b)
    raise ValueError(f"unknown predicate {pred!r}")


def _compile_comparison(c: Comparison, schema: KeySchema) -> Callable[[tuple, tuple], int]:
    preds = [compile_predicate(lv.when, schema) for lv in c.levels]
    needs = [schema.slot[k] if k in schema.slot else schema.list_slot[k] for k in c.needs]
    any_slots = [
        schema.slot.get(k, schema.list_slot.get(k, schema.bloom_slot.get(k))) for k in c.needs_any
    ]
    null_flags = c.null_if_flag
    fs = schema.flags_slot
    last = len(preds)

    def level(a: tuple, b: tuple) -> int:
        for s in needs:
            if not a[s] or not b[s]:
                return -1
        if any_slots and not any(a[s] and b[s] for s in any_slots):
            return -1
        if null_flags:
            fa, fb = a[fs], b[fs]
            for f in null_flags:
                if f in fa or f in fb:
                    return -1
        for i, p in enumerate(preds):
            if p(a, b):
                return i
        return last

    return level


def _expr(pred: dict[str, Any], schema: KeySchema, dice_vars: dict[int, str]) -> str:
    """A predicate as a Python expression over ``a`` (incoming) and ``b`` (spine)."""
    if "eq" in pred:
        keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"], pred["eq"]]
        i, j = schema.slot[keys[0]], schema.slot[keys[-1]]
        return f"(a[{i}] > 0 and a[{i}] == b[{j}])"
    if "in" in pred:
        left, right = pred["in"]
        i, li = schema.slot[left], schema.list_slot[right]
        return f"((a[{i}] > 0 and a[{i}] in b[{li}]) or (b[{i}] > 0 and b[{i}] in a[{li}]))"
    if "overlap" in pred:
        keys = pred["overlap"] if isinstance(pred["overlap"], list) else [pred["overlap"]] * 2
        i, j = schema.list_slot[keys[0]], schema.list_slot[keys[-1]]
        return f"(not a[{i}].isdisjoint(b[{j}]))"
    if "dice" in pred:
        k = schema.bloom_slot[pred["dice"]]
        var = dice_vars.setdefault(k, f"d{k}")
        return f"({var} >= {float(pred['min'])!r})"
    if "flag" in pred:
        f = schema.flags_slot
        name = str(pred["flag"])
        return f"({name!r} in a[{f}] or {name!r} in b[{f}])"
    if "all" in pred:
        return "(" + " and ".join(_expr(p, schema, dice_vars) for p in pred["all"]) + ")"
    if "any" in pred:
        return "(" + " or ".join(_expr(p, schema, dice_vars) for p in pred["any"]) + ")"
    if "not" in pred:
        return f"(not {_expr(pred['not'], schema, dice_vars)})"
    raise ValueError(f"unknown predicate {pred!r}")


def compile_vector(model: LinkageModel, schema: KeySchema) -> Callable[[tuple, tuple], list[int]]:
    """One generated function computing every comparison's level for a pair.

    The model is data; this turns it into straight-line Python once (as Splink turns its
    settings into SQL), so the hot loop makes no per-level function calls and computes each
    Bloom Dice coefficient at most once per pair."""
    lines = ["def vector(a, b):"]
    names = []
    for ci, c in enumerate(model.comparisons):
        var = f"l{ci}"
        names.append(var)
        dice_vars: dict[int, str] = {}
        exprs = [_expr(lv.when, schema, dice_vars) for lv in c.levels]
        null = []
        for k in c.needs:
            s = schema.slot.get(k, schema.list_slot.get(k))
            null.append(f"not a[{s}] or not b[{s}]")
        if c.needs_any:
            slots = [
                schema.slot.get(k, schema.list_slot.get(k, schema.bloom_slot.get(k)))
                for k in c.needs_any
            ]
            null.append("not (" + " or ".join(f"(a[{s}] and b[{s}])" for s in slots) + ")")
        fs = schema.flags_slot
        for f in map(str, c.null_if_flag):  # a QualityFlag's repr is not its value
            null.append(f"{f!r} in a[{fs}] or {f!r} in b[{fs}]")
        cond = " or ".join(f"({x})" for x in null) if null else "False"
        lines.append(f"    if {cond}:")
        lines.append(f"        {var} = -1")
        lines.append("    else:")
        for k, dv in dice_vars.items():
            lines.append(f"        x, y = a[{k}], b[{k}]")
            lines.append(
                f"        {dv} = 2.0 * (x[0] & y[0]).bit_count() / (x[1] + y[1]) "
                "if x is not None and y is not None else 0.0"
            )
        for li, e in enumerate(exprs):
            lines.append(f"        {'if' if li == 0 else 'elif'} {e}:")
            lines.append(f"            {var} = {li}")
        if exprs:
            lines.append("        else:")
            lines.append(f"            {var} = {len(exprs)}")
        else:
            lines.append(f"        {var} = 0")
    lines.append(f"    return [{', '.join(names)}]")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<linkage model {model.version}>", "exec"), namespace)  # noqa: S102
    fn: Callable[[tuple, tuple], list[int]] = namespace["vector"]
    return fn


def _log2_ratio(m: float, u: float, floor: float) -> float:
    return math.log2(max(m, floor) / max(u, floor))


class CompiledModel:
    """A model bound to a key schema, with weight tables; optionally term frequencies."""

    def __init__(self, model: LinkageModel, schema: KeySchema | None = None) -> None:
        self.model = model
        self.schema = schema or KeySchema(model)
        self.names = [c.name for c in model.comparisons]
        self.levels = [_compile_comparison(c, self.schema) for c in model.comparisons]
        # Level index per comparison (-1 null) of a pair; ``levels`` is the same, one closure
        # per comparison (slower; kept as the reference the generated code is tested against).
        self.vector = compile_vector(model, self.schema)
        floor = model.min_u
        self.weights = [
            [_log2_ratio(m, u, floor) for m, u in zip(c.m_values(), c.u_values(), strict=True)]
            for c in model.comparisons
        ]
        self.weights_household = [
            [
                _log2_ratio(m, u, floor)
                for m, u in zip(c.m_values(), c.u_household_values(), strict=True)
            ]
            for c in model.comparisons
        ]
        self.context_index = next(
            (i for i, c in enumerate(model.comparisons) if c.context_levels), -1
        )
        self.context_levels = (
            frozenset(model.comparisons[self.context_index].context_levels)
            if self.context_index >= 0
            else frozenset()
        )
        # Term-frequency tables: (comparison index, level index) -> {token id: bits}.
        self.tf: dict[tuple[int, int], tuple[Counter[int], float]] = {}
        self.tf_total = 1
        self.tf_slot: dict[tuple[int, int], int] = {}
        self.prior = model.prior_log2_odds(1)
        self.guards: list[tuple[list[tuple[int, frozenset[int]]], bool, float]] = []
        for g in model.guards:
            conds = [
                (self.names.index(name), self.level_indexes(name, wanted))
                for name, wanted in g.when.items()
            ]
            self.guards.append((conds, g.in_household, g.cap_log2_odds))

    def level_indexes(self, comparison: str, labels: int | Sequence[str]) -> frozenset[int]:
        """Level indexes of a comparison's level labels: ``"else"`` is the final level,
        ``"null"`` the comparison not made (-1); an int (any) stands for ``("else",)``."""
        c = self.model.comparison(comparison)
        names = [lv.label for lv in c.levels] + ["else"]
        wanted = ("else",) if isinstance(labels, int) else labels
        return frozenset(-1 if x == "null" else names.index(x) for x in wanted)

    def set_term_frequencies(self, counts: dict[str, Counter[int]], total: int) -> None:
        """Term frequencies for levels with ``tf``: exact agreement on a token weighs
        log2(m / frequency of the token). The counters are read live (the spine index keeps
        them up to date), so a streaming spine change costs nothing here."""
        self.tf.clear()
        self.tf_slot.clear()
        self.tf_total = max(total, 1)
        for ci, c in enumerate(self.model.comparisons):
            for li, lv in enumerate(c.levels):
                if lv.tf and lv.tf in counts:
                    self.tf[(ci, li)] = (counts[lv.tf], math.log2(max(lv.m, self.model.min_u)))
                    self.tf_slot[(ci, li)] = self.schema.slot[lv.tf]
        self.prior = self.model.prior_log2_odds(total)

    def weight_of(self, a: tuple, b: tuple, vec: Sequence[int]) -> float:
        """Total match weight in bits (excluding the prior) of a pair's comparison vector."""
        ctx = self.context_index >= 0 and vec[self.context_index] in self.context_levels
        table = self.weights_household if ctx else self.weights
        total = 0.0
        tf = self.tf
        for ci, li in enumerate(vec):
            if li < 0:
                continue
            if not ctx and tf:
                t = tf.get((ci, li))
                if t is not None:
                    count = t[0].get(a[self.tf_slot[(ci, li)]])
                    if count:
                        u = max(count / self.tf_total, self.model.tf_min_u)
                        total += t[1] - math.log2(u)
                        continue
            total += table[ci][li]
        return total

    def comparison_weights(self, a: tuple, b: tuple, vec: Sequence[int]) -> list[float]:
        """Each comparison's weight in bits (0 for a null comparison), as ``weight_of`` adds
        them up (a test holds the sum equal): the evidence a clerical reviewer reads."""
        ctx = self.context_index >= 0 and vec[self.context_index] in self.context_levels
        table = self.weights_household if ctx else self.weights
        out: list[float] = []
        for ci, li in enumerate(vec):
            weight = 0.0 if li < 0 else table[ci][li]
            t = self.tf.get((ci, li)) if li >= 0 and not ctx else None
            if t is not None:
                count = t[0].get(a[self.tf_slot[(ci, li)]])
                if count:
                    weight = t[1] - math.log2(max(count / self.tf_total, self.model.tf_min_u))
            out.append(weight)
        return out

    def explain(self, a: tuple, b: tuple) -> dict[str, Any]:
        """Why a pair scores what it does, comparison by comparison, with no identifier: the
        level that held, its weight, the prior, any guard's cap and the final log-odds."""
        vec = self.vector(a, b)
        weights = self.comparison_weights(a, b, vec)
        comparisons = []
        for ci, li in enumerate(vec):
            c = self.model.comparisons[ci]
            labels = [lv.label for lv in c.levels] + ["else"]
            comparisons.append(
                {
                    "comparison": c.name,
                    "level": "null (not comparable)" if li < 0 else labels[li],
                    "weight": round(weights[ci], 3),
                }
            )
        odds = self.log2_odds(a, b, vec)
        uncapped = self.prior + sum(weights)
        return {
            "prior": round(self.prior, 3),
            "comparisons": comparisons,
            "guard_cap": round(odds - uncapped, 3) if odds < uncapped - 1e-9 else None,
            "log2_odds": round(odds, 3),
            "probability": round(probability(odds), 6),
        }

    def log2_odds(self, a: tuple, b: tuple, vec: Sequence[int]) -> float:
        """Prior plus weights, capped by any guard that applies."""
        odds = self.prior + self.weight_of(a, b, vec)
        if self.guards:
            ctx = self.context_index >= 0 and vec[self.context_index] in self.context_levels
            for conds, in_household, cap in self.guards:
                if (
                    odds > cap
                    and (ctx or not in_household)
                    and all(vec[ci] in levels for ci, levels in conds)
                ):
                    odds = cap
        return odds

    def score(self, a: tuple, b: tuple) -> tuple[float, list[int]]:
        """(log2 odds including the prior and guards, comparison vector) of one pair."""
        vec = self.vector(a, b)
        return self.log2_odds(a, b, vec), vec
