"""Unsupervised estimation: u from the spine itself, m by expectation-maximisation.

- **u**: the spine holds one record per person, so every pair of spine records is a
  non-match. u for each level is its frequency among random spine pairs; exact-agreement
  levels are counted exactly from token frequencies (sum of n_v(n_v - 1) over N(N - 1)),
  which random sampling would miss for rare agreements such as NHS number or postcode unit.
- **household u**: among spine pairs sharing a postcode unit (families, neighbours) the
  person fields agree far more often than between strangers; ``u_household`` is measured on
  exactly those pairs, so a twin's shared surname, date of birth and address are not counted
  as independent evidence.
- **m**: EM on incoming x spine pairs blocked by training rules that do not condition on
  household fields (date of birth; surname with forename) — EM inside a postcode block would
  learn "same household" rather than "same person". Comparisons that use a rule's own keys
  are not estimated from that rule's pairs; estimates are averaged over the rules.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from services.link.domain.columns import RecordColumns
from services.link.domain.index import SpineIndex, blocking_keys
from services.link.domain.model import BlockingRule, Comparison, LinkageModel
from services.link.domain.pairwise import PairLevels
from services.link.domain.scoring import CompiledModel
from services.link.domain.vectorised import Candidates

__all__ = [
    "Mapper",
    "comparison_keys",
    "estimate_link_rate",
    "estimate_m",
    "estimate_u",
    "serial",
    "train",
]

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]
"""``mapper(fn, items)``: ``fn`` of each item, results in item order. Counting pairs is
most of training's time and each chunk of pairs is counted on its own, so a caller with
several cores may pass a mapper that runs the chunks in other processes (``fjo link
batch`` forks workers that share the index). No result depends on it: chunk counts are
whole numbers summed, and patterns are merged in item order, as one pass would meet them."""


def serial(fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterable[Any]:
    """The default :data:`Mapper`: each item here, in turn."""
    return map(fn, items)


def comparison_keys(c: Comparison) -> set[str]:
    """Every linkage key a comparison reads."""
    keys: set[str] = set(c.needs)

    def walk(p: dict[str, Any]) -> None:
        for k, v in p.items():
            if k in ("eq", "overlap", "in"):
                keys.update(v if isinstance(v, list) else [v])
            elif k == "dice":
                keys.add(v)
            elif k in ("all", "any"):
                for q in v:
                    walk(q)
            elif k == "not":
                walk(v)

    for lv in c.levels:
        walk(lv.when)
    return keys


def _normalise(counts: Sequence[float], floor: float) -> list[float]:
    total = sum(counts)
    if total <= 0:
        return [1.0 / len(counts)] * len(counts)
    return [max(x / total, floor) for x in counts]


def _primary_eq(pred: dict[str, Any]) -> tuple[str, str] | None:
    if "eq" in pred:
        keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"]]
        return keys[0], keys[-1]
    if pred.get("all"):
        return _primary_eq(pred["all"][0])
    return None


def _exact_u(index: SpineIndex, left: str, right: str) -> float | None:
    """Share of ordered spine pairs whose ``left`` token equals the other's ``right`` token."""
    ls, rs = index.schema.slot.get(left), index.schema.slot.get(right)
    if ls is None or rs is None:
        return None
    alive = index.alive
    n = int(np.count_nonzero(alive))
    if n < 2:
        return None
    lv, lc = _counts(index.token_column(left)[alive])
    rv, rc = _counts(index.token_column(right)[alive])
    _common, li, ri = np.intersect1d(lv, rv, assume_unique=True, return_indices=True)
    agree = float(np.dot(lc[li].astype(np.float64), rc[ri].astype(np.float64)))
    same = float(lc[li].sum()) if ls == rs else 0.0
    return (agree - same) / (n * (n - 1))


def _counts(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(col[col > 0], return_counts=True)
    return values, counts


def estimate_u(
    model: LinkageModel,
    index: SpineIndex,
    *,
    pairs: int = 200_000,
    seed: int = 1,
    mapper: Mapper = serial,
) -> LinkageModel:
    """u (and household u) for every level, from the spine alone."""
    compiled = CompiledModel(model, index.schema)
    rng = np.random.default_rng(seed)
    # In record-id order, not index order: the same spine gives the same u however it was
    # indexed (arrival order varies between runs; a restarted worker loads it from the DB).
    alive_rows = np.nonzero(index.alive)[0]
    by_id = np.argsort(index.id_column()[alive_rows], kind="stable")
    live = alive_rows[by_id]
    n_cmp = len(model.comparisons)
    counts = [[0.0] * c.n_levels for c in model.comparisons]
    if len(live) > 1:
        left = rng.integers(0, len(live), size=pairs)
        right = rng.integers(0, len(live) - 1, size=pairs)
        right += right >= left  # another record, uniformly
        _count_levels(compiled, index, live[left], live[right], counts, mapper)
    floor = 1.0 / (2 * max(pairs, 1))
    u = [_normalise(c, floor) for c in counts]
    # Rare agreements are counted exactly from token frequencies instead of sampled: a level
    # that is (or starts with) an equality gets sum_v n_left(v) * n_right(v) / N(N - 1).
    for ci, c in enumerate(model.comparisons):
        for li, lv in enumerate(c.levels):
            eq = _primary_eq(lv.when)
            if eq is None or counts[ci][li] >= 10:
                continue
            exact = _exact_u(index, *eq)
            if exact is not None and exact > 0:
                u[ci][li] = exact
    # Household context: pairs that share the household key (postcode unit).
    hh_key = model.notes.get("household_key")
    ctx = next((ci for ci, c in enumerate(model.comparisons) if c.context_levels), -1)
    u_hh: list[list[float] | None] = [None] * n_cmp
    if hh_key and ctx >= 0 and hh_key in index.schema.slot:
        members, sizes = _groups(index.token_column(hh_key), live)
        multi = sizes > 1
        weights = (sizes * (sizes - 1))[multi].astype(np.float64)
        n_with = int(sizes.sum())
        p_same = float(weights.sum()) / (n_with * (n_with - 1)) if n_with > 1 else 0.0
        hh_counts = [[0.0] * c.n_levels for c in model.comparisons]
        n_pairs = min(pairs // 2, int(weights.sum()) // 2) if len(weights) else 0
        if n_pairs:
            # A group by its number of ordered pairs, then two of its members: every ordered
            # pair of same-unit records is as likely as any other.
            starts = (np.cumsum(sizes) - sizes)[multi]
            size = sizes[multi]
            g = rng.choice(len(size), size=n_pairs, p=weights / weights.sum())
            a = rng.integers(0, size[g])
            b = rng.integers(0, size[g] - 1)
            b += b >= a
            at = starts[g]
            _count_levels(compiled, index, members[at + a], members[at + b], hh_counts, mapper)
            hh_floor = 1.0 / (2 * n_pairs)
            for ci in range(n_cmp):
                dist = _normalise(hh_counts[ci], hh_floor)
                if ci == ctx:
                    for li in model.comparisons[ctx].context_levels:
                        if hh_counts[ci][li] > 0:
                            u[ci][li] = max(p_same * dist[li], model.min_u)
                        else:
                            # A shared-area level never seen among same-unit pairs (an
                            # old postcode, a mistyped one) is no rarer than a unit match.
                            u[ci][li] = max(u[ci][li], p_same)
                else:
                    u_hh[ci] = dist
    comparisons = tuple(c.with_u(u[ci], u_hh[ci]) for ci, c in enumerate(model.comparisons))
    return replace(model, comparisons=comparisons)


def _groups(column: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``live`` grouped by their token in ``column`` (0: none): the rows, group after
    group (groups in order of first appearance, rows in ``live`` order within each), and the
    groups' sizes."""
    values = column[live]
    keep = values > 0
    order, values = live[keep], values[keep]
    if not len(order):
        return order, np.zeros(0, dtype=np.int64)
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    group_of = rank[inverse]
    by_group = np.argsort(group_of, kind="stable")
    return order[by_group], np.bincount(group_of, minlength=len(uniq))


_FETCH = 20_000
"""Pairs whose levels are counted at a time (both sides gathered as columns, see ``pairwise``)."""


def _count_levels(
    compiled: CompiledModel,
    index: SpineIndex,
    left: np.ndarray,
    right: np.ndarray,
    counts: list[list[float]],
    mapper: Mapper,
) -> None:
    """Adds each pair's comparison levels (spine rows ``left[k]``, ``right[k]``) to ``counts``."""
    chunks = [
        (left[lo : lo + _FETCH], right[lo : lo + _FETCH]) for lo in range(0, len(left), _FETCH)
    ]
    for part in mapper(partial(_level_counts, PairLevels(compiled), index), chunks):
        for ci, row in enumerate(part):
            for li, n in enumerate(row):
                counts[ci][li] += n


def _level_counts(
    pair_levels: PairLevels, index: SpineIndex, chunk: tuple[np.ndarray, np.ndarray]
) -> list[list[int]]:
    """How many of a chunk's pairs fall in each level of each comparison."""
    left, right = chunk
    levels = pair_levels.levels(index.gather(left), index.gather(right))
    return [
        np.bincount(row[row >= 0], minlength=n).tolist()
        for row, n in zip(levels, pair_levels.n_levels, strict=True)
    ]


def _incoming_columns(index: SpineIndex, incoming: Sequence[tuple]) -> RecordColumns:
    """Incoming records as columns of the index's schema, to be gathered like its rows."""
    cols = RecordColumns(index.schema, capacity=len(incoming))
    cols.append([""] * len(incoming), incoming, 0)
    return cols


def _rule_pairs(
    rule_no: int,
    rule: BlockingRule,
    incoming: Sequence[tuple],
    index: SpineIndex,
    max_pairs: int,
    rng: random.Random,
) -> np.ndarray:
    """(incoming record, spine row) of every pair the rule blocks (blocks of at most its
    ``max_block`` rows), record by record and key by key; a sample of ``max_pairs`` of them
    when there are more: shape (pairs, 2)."""
    keys, rows = index.rule_blocks(rule_no, rule)
    owner, wanted = [], []
    for i, a in enumerate(incoming):
        for key in blocking_keys(rule_no, rule, a, index.schema, spine_side=False):
            owner.append(i)
            wanted.append(key)
    q = np.array(wanted, dtype=np.uint64)
    lo, hi = np.searchsorted(keys, q, "left"), np.searchsorted(keys, q, "right")
    sizes = np.where((hi > lo) & (hi - lo <= rule.max_block), hi - lo, 0)
    total = int(sizes.sum())
    starts = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes) + np.arange(total)
    pairs = np.column_stack((np.repeat(np.array(owner, dtype=np.int64), sizes), rows[starts]))
    if total > max_pairs:
        # The same pairs as sampling the list of them (``sample`` draws indexes only).
        pairs = pairs[rng.sample(range(total), max_pairs)]
    return pairs.astype(np.int64, copy=False)


def _pattern_counts(
    pair_levels: PairLevels,
    index: SpineIndex,
    incoming: RecordColumns,
    active: tuple[int, ...],
    pairs: np.ndarray,
) -> Counter[tuple[int, ...]]:
    """How often each pattern of ``active`` comparisons' levels occurs among ``pairs``
    (incoming record, spine row), patterns in the order of their first pair."""
    if not len(pairs) or not active:
        return Counter({(): len(pairs)}) if len(pairs) else Counter()
    at = pairs
    left = Candidates(*incoming.gather(at[:, 0]))
    levels = pair_levels.levels(left, index.gather(at[:, 1]))[list(active)]
    found, first, counts = np.unique(levels.T, axis=0, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return Counter(
        dict(zip(map(tuple, found[order].tolist()), counts[order].tolist(), strict=True))
    )


def estimate_m(
    model: LinkageModel,
    index: SpineIndex,
    incoming: Sequence[tuple],
    *,
    max_pairs: int = 300_000,
    iterations: int = 25,
    seed: int = 2,
    mapper: Mapper = serial,
) -> tuple[LinkageModel, dict[str, Any]]:
    """m by EM per training rule (u fixed); returns the model and a training log."""
    compiled = CompiledModel(model, index.schema)
    rng = random.Random(seed)
    comps = model.comparisons
    sums: list[list[list[float]]] = [[] for _ in comps]
    log: dict[str, Any] = {}
    columns = _incoming_columns(index, incoming)
    pair_levels = PairLevels(compiled)
    for rule_no, rule in enumerate(model.training_rules):
        pairs = _rule_pairs(rule_no + 1000, rule, incoming, index, max_pairs, rng)
        rule_keys = set(rule.left) | set(rule.spine_keys)
        active = [ci for ci, c in enumerate(comps) if not (comparison_keys(c) & rule_keys)]
        patterns: Counter[tuple[int, ...]] = Counter()
        chunks = [pairs[lo : lo + _FETCH] for lo in range(0, len(pairs), _FETCH)]
        count = partial(_pattern_counts, pair_levels, index, columns, tuple(active))
        for part in mapper(count, chunks):
            patterns.update(part)  # new patterns in the order one pass would meet them
        m = [list(comps[ci].m_values()) for ci in active]
        u = [list(comps[ci].u_values()) for ci in active]
        lam = 0.1
        items = list(patterns.items())
        for _ in range(iterations if items else 0):
            acc_m = [[0.0] * len(x) for x in m]
            total_p = 0.0
            total_n = 0
            for pat, cnt in items:
                pm, pu = lam, 1.0 - lam
                for k, li in enumerate(pat):
                    if li >= 0:
                        pm *= m[k][li]
                        pu *= u[k][li]
                post = pm / (pm + pu) if pm + pu > 0 else 0.0
                w = post * cnt
                total_p += w
                total_n += cnt
                for k, li in enumerate(pat):
                    if li >= 0:
                        acc_m[k][li] += w
            lam = min(max(total_p / max(total_n, 1), 1e-6), 1 - 1e-6)
            m = [_normalise(x, 1e-6) for x in acc_m]
        for k, ci in enumerate(active):
            sums[ci].append(m[k])
        log[rule.name] = {
            "pairs": len(pairs),
            "patterns": len(items),
            "lambda": lam,
            "estimated": [comps[ci].name for ci in active],
        }
    new = []
    for ci, c in enumerate(comps):
        if sums[ci]:
            avg = [sum(ms[li] for ms in sums[ci]) / len(sums[ci]) for li in range(c.n_levels)]
            c = c.with_m(avg)
        new.append(c)
    return replace(model, comparisons=tuple(new)), log


def estimate_link_rate(
    model: LinkageModel,
    index: SpineIndex,
    incoming: Sequence[tuple],
    *,
    records: int = 5_000,
    iterations: int = 50,
    seed: int = 3,
    mapper: Mapper = serial,
) -> tuple[float, dict[str, Any]]:
    """The share of incoming records whose person is on the spine, by EM on the records.

    Each record is one person: one of its candidates is it (candidate j with odds q_j, the
    pairwise odds under the rate) or none is (weight 1 - rate). The rate is the mean over
    records of the posterior that one is; iterated to its fixed point. The blocked
    candidates stand for the whole spine: a person outside them shares no blocking key and
    would have negligible odds. Returns (rate, log)."""
    compiled = CompiledModel(model, index.schema)
    compiled.set_term_frequencies(index.tf_counts, len(index))
    rng = random.Random(seed)
    sample = list(incoming) if len(incoming) <= records else rng.sample(list(incoming), records)
    start = model.expected_link_rate
    base = math.log2(start / max(len(index), 1))
    chunks = [sample[lo : lo + 500] for lo in range(0, len(sample), 500)]
    weighed = partial(_candidate_weights, PairLevels(compiled), index, base)
    weights = [ws for part in mapper(weighed, chunks) for ws in part]
    rate = start
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 (the count goes into the log)
        shift = math.log2(rate / max(len(index), 1))
        total = 0.0
        for ws in weights:
            if ws:
                top = max(ws) + shift
                odds = sum(2.0 ** (w + shift - top) for w in ws)
                total += odds / (odds + (1.0 - rate) * 2.0**-top)
        new = min(max(total / max(len(weights), 1), _MIN_RATE), _MAX_RATE)
        if abs(new - rate) < 1e-4:
            rate = new
            break
        rate = new
    return rate, {"records": len(weights), "iterations": done, "start": start, "rate": rate}


def _candidate_weights(
    pair_levels: PairLevels, index: SpineIndex, base: float, records: Sequence[tuple]
) -> list[list[float]]:
    """Each record's candidates' log2 odds, less ``base`` (the prior's share)."""
    cands = index.candidates_many(records)
    sizes = np.array([len(c) for c in cands], dtype=np.int64)
    if not sizes.sum():
        return [[] for _ in records]
    owner = np.repeat(np.arange(len(records)), sizes)
    left = Candidates(*_incoming_columns(index, records).gather(owner))
    levels = pair_levels.levels(left, index.gather(np.concatenate(cands)))
    odds = (pair_levels.log2_odds(left, levels) - base).tolist()
    ends = np.cumsum(sizes).tolist()
    return [odds[lo:hi] for lo, hi in zip([0, *ends[:-1]], ends, strict=True)]


_MIN_RATE, _MAX_RATE = 0.05, 0.98
"""Bounds on the estimated link rate: at 1 a lone candidate would be taken whatever it
scores (every record assumed to be on the spine)."""


def train(
    model: LinkageModel,
    index: SpineIndex,
    incoming: Sequence[tuple],
    *,
    u_pairs: int = 200_000,
    m_pairs: int = 300_000,
    seed: int = 1,
    version: str | None = None,
    mapper: Mapper = serial,
) -> tuple[LinkageModel, dict[str, Any]]:
    """u from the spine, then m by EM; returns the new model version and a training log."""
    model = estimate_u(model, index, pairs=u_pairs, seed=seed, mapper=mapper)
    model, log = estimate_m(model, index, incoming, max_pairs=m_pairs, seed=seed + 1, mapper=mapper)
    if model.thresholds.one_to_one and incoming:
        rate, log["link_rate"] = estimate_link_rate(
            model, index, incoming, seed=seed + 2, mapper=mapper
        )
        model = replace(model, expected_link_rate=rate)
    notes = {**model.notes, "training": log, "spine_size": len(index)}
    return replace(model, version=version or model.version, notes=notes), log
