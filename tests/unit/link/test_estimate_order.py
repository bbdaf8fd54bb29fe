"""u estimated from the spine does not depend on the order the spine was indexed in.

A link worker indexes the spine in arrival order (partitions interleave differently on every
run) and, after a restart, in the database's order: the same spine must give the same model,
or a restarted worker scores the same pair differently (found by tests/reliability).
"""

from __future__ import annotations

import random

from services.link.domain import SpineIndex, default_model, estimate_u
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
