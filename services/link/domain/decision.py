"""One record's decision and the record-level odds it rests on: shared by the pair-by-pair
linker (``decide``) and the one that scores all candidates on the index's columns
(``vectorised``), so neither imports the other."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.events import LINKED_STATUSES

__all__ = ["REVIEW", "LinkDecision", "record_log2_odds"]

REVIEW = frozenset({90, 91})


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """The outcome for one incoming record."""

    record_id: str
    spine_id: str | None
    status: int
    probability: float
    weight: float
    candidate_id: str | None = None
    candidates: int = 0

    @property
    def linked(self) -> bool:
        return self.status in LINKED_STATUSES

    @property
    def review(self) -> bool:
        return self.status in REVIEW


def record_log2_odds(weights: Sequence[float], link_rate: float) -> tuple[float, float]:
    """Log2 odds that the first candidate is the record's person, given all its candidates.

    ``weights`` are the candidates' pairwise log2 odds (prior log2(rate / N) included), best
    first. A record is one person: at most one candidate is its match, and with probability
    ``link_rate`` one is. So candidate i is the match with probability
    q_i / (sum_j q_j + 1 - rate), q_j = 2 ** weight_j: a runner-up that scores as well takes
    its share (twins, namesakes: no margin rule needed), and a lone strong candidate is not
    also weighed against every spine person that blocking already ruled out. Returns
    (odds with the runner-ups, odds as if the best were the only candidate)."""
    none = math.log2(max(1.0 - link_rate, 1e-6))
    best = weights[0]
    alone = best - none
    if len(weights) == 1:
        return alone, alone
    top = max(none, weights[1])
    rest = sum(2.0 ** (x - top) for x in weights[1:]) + 2.0 ** (none - top)
    return best - top - math.log2(rest), alone
