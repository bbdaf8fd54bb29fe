"""Levels and log-odds of many pairs on columns are the reference engine's, bit for bit,
and so are the decisions of many records linked at once.

Training counts levels of random spine pairs and of blocked incoming x spine pairs with
``pairwise.PairLevels``; the reference is ``CompiledModel.vector`` and ``log2_odds`` on the
compact tuples, pair by pair. Both are run on a synthetic population encoded by
pseudonymise's own split (households, twins, moves, placeholders, missing NHS numbers).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from fjo.link_batch import encode_columns, encode_rows
from services.link.domain import CompiledModel, Linker, SpineIndex, default_model, estimate_u
from services.link.domain.columns import RecordColumns
from services.link.domain.pairwise import PairLevels
from services.link.domain.vectorised import Candidates
from synth.population import SynthConfig, generate
from tests.unit.link.fakes import keys


@pytest.fixture(scope="module")
def encoded() -> tuple[SpineIndex, CompiledModel, list[tuple[str, tuple]]]:
    data = generate(SynthConfig(seed=78, spine_size=3_000, incoming_size=1_000))
    key = hashlib.sha256(b"pairwise test").digest()
    model = default_model()
    spine = encode_rows(data.spine, key, model=model)
    incoming = encode_rows(data.incoming, key, model=model)
    index = SpineIndex(model)
    index.add_many([i for i, _ in spine], [c for _, c in spine])
    model = estimate_u(model, index, pairs=20_000)
    index.model = model
    compiled = CompiledModel(model, index.schema)
    compiled.set_term_frequencies(index.tf_counts, len(index))
    return index, compiled, incoming


def _columns(index: SpineIndex, records: list[tuple]) -> RecordColumns:
    cols = RecordColumns(index.schema, capacity=len(records))
    cols.append([str(i) for i in range(len(records))], records, 0)
    return cols


def test_random_spine_pairs_have_the_reference_levels(encoded) -> None:
    index, compiled, _incoming = encoded
    rng = np.random.default_rng(3)
    left = rng.integers(0, len(index), size=6_000)
    right = rng.integers(0, len(index), size=6_000)
    # Pairs of one household too, where most fields agree (the household u's pairs).
    hh = index.token_column(compiled.model.notes["household_key"])
    same = [np.nonzero(hh == v)[0] for v in np.unique(hh[hh > 0])[:800]]
    multi = [rows for rows in same if len(rows) > 1]
    left = np.concatenate((left, [rows[0] for rows in multi]))
    right = np.concatenate((right, [rows[1] for rows in multi]))
    got = PairLevels(compiled).levels(index.gather(left), index.gather(right))
    want = [
        compiled.vector(a, b)
        for a, b in zip(index.records_of(left), index.records_of(right), strict=True)
    ]
    assert got.T.tolist() == want
    # The pairs reach more than "else" and null in every comparison.
    assert all(len(set(row)) >= 2 for row in got.tolist())


def test_blocked_incoming_pairs_have_the_reference_levels_and_log_odds(encoded) -> None:
    index, compiled, incoming = encoded
    records = [a for _rid, a in incoming]
    owner, rows = [], []
    for i, a in enumerate(records):
        cands = index.candidates(a)
        owner += [i] * len(cands)
        rows += cands.tolist()
    owner_a, rows_a = np.array(owner), np.array(rows)
    left = Candidates(*_columns(index, records).gather(owner_a))
    pl = PairLevels(compiled)
    levels = pl.levels(left, index.gather(rows_a))
    odds = pl.log2_odds(left, levels)
    want_levels, want_odds = [], []
    for i, b in zip(owner, index.records_of(rows_a), strict=True):
        vec = compiled.vector(records[i], b)
        want_levels.append(vec)
        want_odds.append(compiled.log2_odds(records[i], b, vec))
    assert levels.T.tolist() == want_levels
    assert odds.tolist() == want_odds  # exactly, not approximately
    assert len(owner) > 5 * len(records)
    # Term frequencies and the guards' caps were exercised, not only the tables.
    plain = [
        compiled.prior + sum(compiled.weights[ci][li] for ci, li in enumerate(v) if li >= 0)
        for v in want_levels
    ]
    assert sum(o != p for o, p in zip(want_odds, plain, strict=True)) > 100
    assert sum(o in {cap for _c, _h, cap in compiled.guards} for o in want_odds) > 0


def test_the_two_sides_must_be_as_long(encoded) -> None:
    index, compiled, _incoming = encoded
    with pytest.raises(ValueError, match="3 left rows against 2 right rows"):
        PairLevels(compiled).levels(index.gather(np.arange(3)), index.gather(np.arange(2)))


@pytest.mark.parametrize("one_to_one", [True, False])
def test_linking_many_records_at_once_decides_each_as_linking_it_alone(one_to_one: bool) -> None:
    """``Linker.link_many`` (candidates looked up together, pairs scored together) against
    ``link_compact`` record by record, on an index with a base and a delta: the spine built
    in one go from columns, then people added and re-versioned one by one."""
    data = generate(SynthConfig(seed=79, spine_size=3_000, incoming_size=1_200))
    key = hashlib.sha256(b"pairwise many").digest()
    model = default_model()
    spine = encode_columns(data.spine[:2_500], key, model)
    late = encode_rows(data.spine[2_500:], key, model=model)
    index = SpineIndex.build(model, spine)
    for n, (rid, compact) in enumerate(late, start=1):
        index.add_compact(rid, compact, n)
    moved = encode_rows(data.spine[:50], key, model=model)  # new versions of base rows
    for n, (rid, compact) in enumerate(moved, start=len(late) + 1):
        index.add_compact(rid, compact, n)
    model = estimate_u(model, index, pairs=20_000)
    if not one_to_one:
        model = replace(model, thresholds=replace(model.thresholds, one_to_one=False))
    index.model = model
    linker = Linker(CompiledModel(model, index.schema), index)
    linker.refresh()
    incoming = encode_rows(data.incoming, key, model=model)
    ids = [rid for rid, _ in incoming] + ["EMPTY", "NOWHERE"]
    records = [c for _, c in incoming] + [
        index.schema.compact(keys("EMPTY")),
        index.schema.compact(keys("NOWHERE", "zzyzx", "qwertyuiop", "1901-02-03", "M", "ZZ9 9ZZ")),
    ]
    want = [linker.link_compact(rid, a) for rid, a in zip(ids, records, strict=True)]
    got = linker.link_many(ids, records, pairs=3_000)  # several scoring runs
    assert got == want
    statuses = {d.status for d in want}
    assert {97, 99, 50} <= statuses and ({4, 1} & statuses)
