"""What training estimates does not depend on how it was run.

u from the spine does not depend on the order the spine was indexed in, and no estimate
depends on how the pairs' counting was divided up (``fjo link batch`` counts chunks of
pairs in forked workers).

A link worker indexes the spine in arrival order (partitions interleave differently on every
run) and, after a restart, in the database's order: the same spine must give the same model,
or a restarted worker scores the same pair differently (found by tests/reliability).
"""

from __future__ import annotations

import random

from services.link.domain import SpineIndex, default_model, estimate_u, train
from tests.unit.link.fakes import population


def _estimated(records: list) -> object:
    model = default_model()
    index = SpineIndex(model)
    for rec in records:
        index.add(rec)
    return estimate_u(model, index, pairs=5_000)


def test_the_same_spine_in_another_order_gives_the_same_u():
    records = population(300)
    shuffled = list(records)
    random.Random(5).shuffle(shuffled)
    assert _estimated(shuffled) == _estimated(records)


def test_training_counts_chunks_the_mapper_may_run_in_any_order_with_the_same_model():
    model = default_model()
    index = SpineIndex(model)
    records = population(300)
    for rec in records:
        index.add(rec)
    incoming = [index.schema.compact(rec) for rec in population(200, seed=11)]
    sizes: list[int] = []

    def backwards(fn, items):  # each chunk on its own, last first, results put back in order
        sizes.append(len(items))
        return list(reversed([fn(item) for item in reversed(items)]))

    serial_model, serial_log = train(model, index, incoming, u_pairs=30_000, seed=4)
    mapped_model, mapped_log = train(
        model, index, incoming, u_pairs=30_000, seed=4, mapper=backwards
    )
    assert max(sizes) > 1  # the pairs were counted in several chunks
    assert mapped_model == serial_model
    assert mapped_log == serial_log
