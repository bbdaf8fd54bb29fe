"""The spine index: compact encoded spine records plus an inverted blocking index.

Blocking keys are hashed tuples ``(rule, token ids...)`` mapped to lists of spine positions,
so a streaming lookup is a few dict probes. Rules are designed for recall: several
independent keys (NHS token; date of birth with surname or forename forms; swapped date of
birth; year of birth with postcode sector; surname with forename; previous surnames), so a
record damaged in one field is still found through another. Blocks larger than a rule's
``max_block`` are skipped and counted (``skipped_blocks``) so the recall cost is visible.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Iterator

from services.link.domain.model import BlockingRule, LinkageModel
from services.link.domain.records import EncodedRecord, Interner, KeySchema

__all__ = ["SpineIndex", "blocking_keys"]


_LSH_POSITIONS: dict[tuple[int, int, int], tuple[int, ...]] = {}


def _lsh_key(bits: int, rule: BlockingRule, width: int = 1024) -> int:
    pos_key = (rule.lsh_seed, rule.lsh_bits, width)
    positions = _LSH_POSITIONS.get(pos_key)
    if positions is None:
        rng = random.Random(rule.lsh_seed)
        positions = _LSH_POSITIONS[pos_key] = tuple(rng.sample(range(width), rule.lsh_bits))
    key = 0
    for p in positions:
        key = (key << 1) | ((bits >> p) & 1)
    return key


def blocking_keys(
    rule_no: int, rule: BlockingRule, rec: tuple, schema: KeySchema, *, spine_side: bool
) -> Iterator[int]:
    """The hashed blocking keys of one compact record under one rule (none if a key is
    missing). List-valued spine keys (previous surnames, ...) yield one key per token."""
    keys = rule.spine_keys if spine_side else rule.left
    parts: list[Iterable[int]] = []
    if rule.lsh_bloom:
        bloom = rec[schema.bloom_slot[rule.lsh_bloom]]
        if bloom is None:
            return
        parts.append((_lsh_key(bloom[0], rule),))
    for k in keys:
        if k in schema.slot:
            v = rec[schema.slot[k]]
            if v <= 0:
                return
            parts.append((v,))
        else:
            vs = rec[schema.list_slot[k]]
            if not vs:
                return
            parts.append(sorted(v for v in vs if v > 0))
    for combo in itertools.product(*parts):
        yield hash((rule_no, *combo))


class SpineIndex:
    """Encoded spine records with their blocking index and term frequencies."""

    def __init__(
        self, model: LinkageModel, schema: KeySchema | None = None, interner: Interner | None = None
    ) -> None:
        self.model = model
        self.schema = schema if schema is not None else KeySchema(model)
        self.interner = interner if interner is not None else Interner()
        self.records: list[tuple] = []
        self.ids: list[str] = []
        self.alive: list[bool] = []
        self.position: dict[str, int] = {}
        self.blocks: dict[int, list[int]] = {}
        self.tf_keys = sorted({lv.tf for c in model.comparisons for lv in c.levels if lv.tf})
        self.tf_counts: dict[str, Counter[int]] = {k: Counter() for k in self.tf_keys}
        self.skipped_blocks = 0

    def __len__(self) -> int:
        return len(self.position)

    def add(self, rec: EncodedRecord) -> int:
        """Add or replace a spine record; the replaced version stops being a candidate."""
        compact = self.schema.compact(rec, self.interner)
        return self.add_compact(rec.record_id, compact)

    def add_compact(self, record_id: str, compact: tuple) -> int:
        old = self.position.get(record_id)
        if old is not None:
            self.alive[old] = False
            self._count(self.records[old], -1)
        pos = len(self.records)
        self.records.append(compact)
        self.ids.append(record_id)
        self.alive.append(True)
        self.position[record_id] = pos
        blocks = self.blocks
        for rule_no, rule in enumerate(self.model.blocking_rules):
            for key in blocking_keys(rule_no, rule, compact, self.schema, spine_side=True):
                bucket = blocks.get(key)
                if bucket is None:
                    blocks[key] = [pos]
                elif bucket[-1] != pos:
                    bucket.append(pos)
        self._count(compact, +1)
        return pos

    def _count(self, compact: tuple, delta: int) -> None:
        for k in self.tf_keys:
            v = compact[self.schema.slot[k]]
            if v > 0:
                self.tf_counts[k][v] += delta

    def candidates(self, compact: tuple) -> set[int]:
        """Spine positions sharing at least one blocking key with an incoming record."""
        out: set[int] = set()
        blocks = self.blocks
        for rule_no, rule in enumerate(self.model.blocking_rules):
            for key in blocking_keys(rule_no, rule, compact, self.schema, spine_side=False):
                bucket = blocks.get(key)
                if bucket is None:
                    continue
                if len(bucket) > rule.max_block:
                    self.skipped_blocks += 1
                    continue
                out.update(bucket)
        alive = self.alive
        return {p for p in out if alive[p]}

    def candidates_by_rule(self, compact: tuple) -> dict[str, set[int]]:
        """Candidates found by each rule separately (for measuring blocking recall)."""
        out: dict[str, set[int]] = {}
        for rule_no, rule in enumerate(self.model.blocking_rules):
            found: set[int] = set()
            for key in blocking_keys(rule_no, rule, compact, self.schema, spine_side=False):
                bucket = self.blocks.get(key)
                if bucket is not None and len(bucket) <= rule.max_block:
                    found.update(p for p in bucket if self.alive[p])
            out[rule.name] = found
        return out
