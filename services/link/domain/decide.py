"""Decisions: deterministic steps first, then Fellegi-Sunter, then one spine person per record.

Status codes (in the spirit of SAIL's MACRAL ``ALF_STS_CD``):

====  =====================================================================================
1     NHS-number token agrees and pseudonymise did not flag the check digit as invalid
4     exact agreement on forename, surname, date of birth, sex and postcode (one candidate)
39    exact on four; forename agrees through a nickname/Welsh variant or Dice >= 0.9
50    probabilistic match at or above the accept threshold
90    review: probabilistic match in the review band
91    review: the best candidate alone would be accepted, but a runner-up scores too close
      (twins, namesakes)
97    unlinked: too few identifiers to link (no date of birth, surname or NHS number)
98    unlinked: candidates found but none reached the review threshold
99    unlinked: no candidate found by any blocking rule
====  =====================================================================================

1, 4 and 39 are SAIL's codes; 50, 90 and 99 are the contract's ``LinkStatus`` values, and 91,
97 and 98 say more precisely why (they publish as 90 and 99).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from services.link.domain.columns import RecordColumns
from services.link.domain.decision import REVIEW, LinkDecision, record_log2_odds
from services.link.domain.index import SpineIndex
from services.link.domain.pairwise import PairLevels
from services.link.domain.records import EncodedRecord
from services.link.domain.scoring import CompiledModel, compile_predicate, probability
from services.link.domain.vectorised import Candidates, VectorLinker, windows

__all__ = [
    "REVIEW",
    "LinkDecision",
    "Linker",
    "record_log2_odds",
    "with_competition",
]


def with_competition(explained: dict[str, Any], decision: LinkDecision) -> dict[str, Any]:
    """A queued pair's evidence (``CompiledModel.explain``) completed to the record's own
    probability: the record is one person, so its other candidates take their share
    (``record_log2_odds``). That share is one more step of the waterfall, so prior, comparison
    weights, guard cap and competition add up to the probability the reviewer is shown."""
    p = min(max(decision.probability, 1e-12), 1.0 - 1e-12)
    record_odds = math.log2(p / (1.0 - p))
    return {
        **explained,
        "pair_probability": explained["probability"],
        "probability": round(decision.probability, 6),
        "competition": {
            "candidates": decision.candidates,
            "weight": round(record_odds - explained["log2_odds"], 3),
        },
        "record_log2_odds": round(record_odds, 3),
    }


class Linker:
    """Links incoming encoded records against a spine index with a compiled model."""

    def __init__(self, compiled: CompiledModel, index: SpineIndex) -> None:
        self.compiled = compiled
        self.index = index
        schema = compiled.schema
        det = compiled.model.notes.get("deterministic", {})
        self.nhs_slot = schema.slot.get(det.get("nhs_key", "nhs"), -1)
        self.nhs_refused = frozenset(det.get("nhs_refused_if_flags", []))
        self.exact_slots = [schema.slot[k] for k in det.get("exact_keys", []) if k in schema.slot]
        self.forename_slot = schema.slot.get(det.get("forename_key", "forename"), -1)
        variant = det.get("forename_variant")
        self.variant = compile_predicate(variant, schema) if variant else None
        self.exact_block = set(det.get("exact_not_if_flags", []))
        # Sets of (comparison index, levels) that, all together, contradict an NHS agreement;
        # any one set is enough. A model may give one set ({name: labels}, the older form)
        # or a list of them; the oldest form {name: -1} meant the comparison's "else" level.
        raw = det.get("nhs_contradicted_by_else", {})
        names = self.compiled.names
        self.contradictions = [
            alternative
            for alternative in (
                [
                    (names.index(name), compiled.level_indexes(name, labels))
                    for name, labels in one.items()
                    if name in names
                ]
                for one in (raw if isinstance(raw, list) else [raw])
            )
            if alternative
        ]
        self.required = [schema.slot[k] for k in det.get("any_of_required", []) if k in schema.slot]
        self.fs = schema.flags_slot
        self.link_rate = compiled.model.expected_link_rate
        # Many candidates are scored on the index's columns at once (the same arithmetic,
        # see ``vectorised``); a few, pair by pair, where that is quicker.
        vectorised = VectorLinker(self)
        self.vectorised: VectorLinker | None = vectorised if vectorised.supported else None
        self.vector_from = 8
        self.pairwise = PairLevels(compiled)  # many records' pairs at once (``link_many``)

    def contradicts_nhs(self, level_of: Callable[[int], int]) -> bool:
        """True when the pair's levels (``level_of(comparison index)``) contradict its NHS
        agreement: then the number is not taken on its own (a baby under its mother's)."""
        return any(
            all(level_of(ci) in wanted for ci, wanted in alternative)
            for alternative in self.contradictions
        )

    def refresh(self) -> None:
        """Recompute term-frequency weights and the prior after the spine changed."""
        self.compiled.set_term_frequencies(self.index.tf_counts, len(self.index))

    def link(self, rec: EncodedRecord) -> LinkDecision:
        compact = self.index.schema.compact(rec, self.index.interner, grow=False)
        return self.link_compact(rec.record_id, compact)

    def _unlinkable(self, a: tuple) -> bool:
        """Whether a record has too few identifiers to link (status 97)."""
        return bool(self.required) and not any(a[s] for s in self.required)

    def link_many(
        self, record_ids: Sequence[str], records: Sequence[tuple], *, pairs: int = 50_000
    ) -> list[LinkDecision]:
        """``link_compact`` of every record, in order. The records' candidates are looked up
        together (``SpineIndex.candidates_many``), each run of records with some ``pairs``
        candidates between them is scored at once on columns (``pairwise``: the same levels
        and log-odds), then each record is decided from its own candidates."""
        if self.vectorised is None:
            return [self.link_compact(rid, a) for rid, a in zip(record_ids, records, strict=True)]
        out: list[LinkDecision | None] = [None] * len(records)
        lookup: list[int] = []
        for k, a in enumerate(records):
            if self._unlinkable(a):
                out[k] = LinkDecision(record_ids[k], None, 97, 0.0, float("-inf"))
            else:
                lookup.append(k)
        step = 1_000
        for lo in range(0, len(lookup), step):
            ks = lookup[lo : lo + step]
            waiting: list[tuple[int, np.ndarray]] = []
            held = 0
            for k, cands in zip(
                ks, self.index.candidates_many([records[k] for k in ks]), strict=True
            ):
                if not len(cands):
                    out[k] = LinkDecision(record_ids[k], None, 99, 0.0, float("-inf"))
                    continue
                waiting.append((k, cands))
                held += len(cands)
                if held >= pairs:
                    self._decide_together(record_ids, records, waiting, out)
                    waiting, held = [], 0
            self._decide_together(record_ids, records, waiting, out)
        decided = [d for d in out if d is not None]
        assert len(decided) == len(out), "every record was decided"
        return decided

    def _decide_together(
        self,
        record_ids: Sequence[str],
        records: Sequence[tuple],
        waiting: list[tuple[int, np.ndarray]],
        out: list[LinkDecision | None],
    ) -> None:
        if not waiting or self.vectorised is None:
            return
        sizes = np.array([len(c) for _k, c in waiting], dtype=np.int64)
        mine = [records[k] for k, _c in waiting]
        left_columns = RecordColumns(self.index.schema, capacity=len(mine))
        left_columns.append([""] * len(mine), mine, 0)
        left = Candidates(*left_columns.gather(np.repeat(np.arange(len(mine)), sizes)))
        right = self.index.gather(np.concatenate([c for _k, c in waiting]))
        levels = self.pairwise.levels(left, right)
        odds = self.pairwise.log2_odds(left, levels)
        lo = 0
        sizes_list = sizes.tolist()
        runs = windows(right, sizes_list)
        for (k, _c), n, theirs in zip(waiting, sizes_list, runs, strict=True):
            hi = lo + n
            out[k] = self.vectorised.decide_scored(
                record_ids[k], records[k], theirs, levels[:, lo:hi], odds[lo:hi]
            )
            lo = hi

    def link_compact(self, record_id: str, a: tuple) -> LinkDecision:
        index = self.index
        if self._unlinkable(a):
            return LinkDecision(record_id, None, 97, 0.0, float("-inf"))
        cands = index.candidates(a)
        if not len(cands):
            return LinkDecision(record_id, None, 99, 0.0, float("-inf"))
        if self.vectorised is not None and len(cands) >= self.vector_from:
            return self.vectorised.decide(record_id, a, index.gather(cands))
        compiled = self.compiled
        vector, log2_odds = compiled.vector, compiled.log2_odds
        scored = []
        for sid, b in zip(index.ids_of(cands), index.records_of(cands), strict=True):
            vec = vector(a, b)
            scored.append((log2_odds(a, b, vec), sid, b, vec))
        # Highest weight wins; ties go to the smallest spine id so reruns agree.
        scored.sort(key=lambda t: (-t[0], t[1]))
        n = len(scored)
        flags = a[self.fs]

        # 1: NHS token with a valid check digit, unless the person's own details contradict it
        # (a baby recorded under its mother's number: another birthday or none, "Baby" or
        # another name, the other sex).
        if self.nhs_slot >= 0 and a[self.nhs_slot] > 0 and not (self.nhs_refused & flags):
            nhs_hits = [t for t in scored if t[2][self.nhs_slot] == a[self.nhs_slot]]
            if len(nhs_hits) == 1:
                w, sid, _pos, vec = nhs_hits[0]
                if not self.contradicts_nhs(vec.__getitem__):
                    return LinkDecision(record_id, sid, 1, 1.0, w, sid, n)

        # 4 and 39: exact on the five core fields, or four plus a forename variant.
        if self.exact_slots and not (self.exact_block & flags):
            exact4 = []
            for t in scored:
                b = t[2]
                agree = [a[s] > 0 and a[s] == b[s] for s in self.exact_slots]
                if all(agree):
                    exact4.append((4, t))
                elif (
                    self.variant is not None
                    and sum(agree) == len(agree) - 1
                    and not agree[self.exact_slots.index(self.forename_slot)]
                    and self.variant(a, b)
                ):
                    exact4.append((39, t))
            fives = [t for code, t in exact4 if code == 4]
            if len(fives) == 1:
                w, sid, _, _ = fives[0]
                return LinkDecision(record_id, sid, 4, 1.0, w, sid, n)
            if not fives and len(exact4) == 1:
                w, sid, _, _ = exact4[0][1]
                return LinkDecision(record_id, sid, 39, max(probability(w), 0.9), w, sid, n)

        # Probabilistic.
        th = compiled.model.thresholds
        w, sid, _, _ = scored[0]
        if th.one_to_one:
            odds, alone = record_log2_odds([t[0] for t in scored], self.link_rate)
            p = probability(odds)
            if p >= th.accept:
                return LinkDecision(record_id, sid, 50, p, w, sid, n)
            if probability(alone) >= th.accept:  # a runner-up holds it back (twins, namesakes)
                return LinkDecision(record_id, None, 91, p, w, sid, n)
        else:
            p = probability(w)
            if p >= th.accept:
                if n > 1:
                    w2 = scored[1][0]
                    if probability(w2) >= th.review and w - w2 < th.margin_bits:
                        return LinkDecision(record_id, None, 91, p, w, sid, n)
                return LinkDecision(record_id, sid, 50, p, w, sid, n)
        if p >= th.review:
            return LinkDecision(record_id, None, 90, p, w, sid, n)
        return LinkDecision(record_id, None, 98, p, w, sid, n)
