"""A chunk of the blocking index is sorted by key, then row, whichever way it was sorted.

Large chunks are sorted in two halves in threads, by key alone when each key's rows already
come in order; the result must be the one sort by both would give.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.link.domain import blocks
from services.link.domain.blocks import Blocks


def _by_both(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((rows, keys))
    return keys[order], rows[order]


def _pairs(rule_ordered: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    distinct = rng.integers(0, 2**64 - 1, size=3_000, dtype=np.uint64)  # both halves
    keys, rows = [], []
    for _rule in range(4):  # rule by rule, rows ascending within each, keys shared
        keys.append(distinct[rng.integers(0, len(distinct), size=5_000)])
        rows.append(np.arange(5_000, dtype=np.int64))
    k, r = np.concatenate(keys), np.concatenate(rows)
    if not rule_ordered:
        shuffle = rng.permutation(len(k))
        k, r = k[shuffle], r[shuffle]
    return k, r


@pytest.mark.parametrize("rule_ordered", [True, False], ids=["rule-ordered", "shuffled"])
@pytest.mark.parametrize("split_at", [1 << 30, 1_000], ids=["one-sort", "two-threads"])
def test_a_chunk_holds_each_key_once_with_its_rows_in_order(
    monkeypatch: pytest.MonkeyPatch, rule_ordered: bool, split_at: int
) -> None:
    monkeypatch.setattr(blocks, "_SPLIT_AT", split_at)
    keys, rows = _pairs(rule_ordered)
    chunk = Blocks.of(keys, rows)
    want_keys, want_rows = _by_both(keys, rows)
    assert np.array_equal(chunk.rows, want_rows)
    assert np.array_equal(np.repeat(chunk.keys, np.diff(chunk.starts)), want_keys)
    assert len(np.unique(chunk.keys)) == len(chunk.keys)


@pytest.mark.parametrize("threaded_from", [0, 1 << 30], ids=["rules-in-threads", "one-by-one"])
def test_an_index_finds_the_same_candidates_however_its_rules_keys_were_computed(
    monkeypatch: pytest.MonkeyPatch, threaded_from: int
) -> None:
    from services.link.domain import SpineIndex, default_model, index
    from services.link.domain.columns import RecordColumns
    from tests.unit.link.fakes import population

    model = default_model()
    people = population(400)
    reference = SpineIndex(model)
    for rec in people:
        reference.add(rec)
    store = RecordColumns(reference.schema, capacity=len(people))
    store.append([r.record_id for r in people], [reference.schema.compact(r) for r in people], 0)
    monkeypatch.setattr(index, "_THREADED_ROWS", threaded_from)
    built = SpineIndex.build(model, [store])
    found = 0
    for rec in people[::4]:
        a = reference.schema.compact(rec)
        want = sorted(reference.ids_of(reference.candidates(a)))
        assert sorted(built.ids_of(built.candidates(a))) == want
        found += len(want)
    assert found >= len(people) // 4  # each finds itself at least
