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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from services.link.domain.model import BlockingRule, LinkageModel
from services.link.domain.records import EncodedRecord, Interner, KeySchema

__all__ = ["SpineIndex", "blocking_keys"]


_LSH_MASKS: dict[tuple[int, int, int], int] = {}


def _lsh_mask(rule: BlockingRule, width: int = 1024) -> int:
    """The sampled bit positions of an LSH band as a mask: ``bits & mask`` is the band key."""
    key = (rule.lsh_seed, rule.lsh_bits, width)
    mask = _LSH_MASKS.get(key)
    if mask is None:
        rng = random.Random(rule.lsh_seed)
        mask = 0
        for p in rng.sample(range(width), rule.lsh_bits):
            mask |= 1 << p
        _LSH_MASKS[key] = mask
    return mask


KeyFn = Callable[[tuple], list[int]]


def compile_keys(rule_no: int, rule: BlockingRule, schema: KeySchema, *, spine_side: bool) -> KeyFn:
    """A function giving the hashed blocking keys of a compact record under one rule (none
    if a key is missing). A list-valued spine key (previous surnames, ...) yields one key per
    token. Common shapes get a specialised function: this runs for every record."""
    keys = rule.spine_keys if spine_side else rule.left
    bslot = schema.bloom_slot[rule.lsh_bloom] if rule.lsh_bloom else -1
    mask = _lsh_mask(rule) if rule.lsh_bloom else 0
    if all(k in schema.slot for k in keys):
        slots = [schema.slot[k] for k in keys]
        if bslot >= 0 and not slots:

            def lsh_only(r: tuple) -> list[int]:
                b = r[bslot]
                return [hash((rule_no, b[0] & mask))] if b is not None else []

            return lsh_only
        if bslot < 0 and len(slots) == 1:
            (s0,) = slots
            return lambda r: [hash((rule_no, r[s0]))] if r[s0] > 0 else []
        if bslot < 0 and len(slots) == 2:
            s0, s1 = slots
            return lambda r: [hash((rule_no, r[s0], r[s1]))] if r[s0] > 0 and r[s1] > 0 else []
        if bslot < 0 and len(slots) == 3:
            s0, s1, s2 = slots
            return lambda r: (
                [hash((rule_no, r[s0], r[s1], r[s2]))]
                if r[s0] > 0 and r[s1] > 0 and r[s2] > 0
                else []
            )

    def general(r: tuple) -> list[int]:
        return list(blocking_keys(rule_no, rule, r, schema, spine_side=spine_side))

    return general


def compile_all_keys(
    rules: list[tuple[int, BlockingRule]], schema: KeySchema, *, spine_side: bool
) -> Callable[[tuple], list[int]]:
    """One generated function giving every blocking key of a record under all ``rules``
    (straight-line code, each slot read once): indexing a million records calls it a million
    times. Rules on token lists fall back to :func:`blocking_keys`."""
    lines = ["def all_keys(r):", "    out = []"]
    env: dict[str, Any] = {"_general": blocking_keys, "_schema": schema}
    used_slots: set[int] = set()
    body: list[str] = []
    for n, rule in rules:
        keys = rule.spine_keys if spine_side else rule.left
        if not all(k in schema.slot for k in keys):
            env[f"_rule{n}"] = rule
            body.append(
                f"    out.extend(_general({n}, _rule{n}, r, _schema, spine_side={spine_side}))"
            )
            continue
        slots = [schema.slot[k] for k in keys]
        used_slots.update(slots)
        parts = [str(n)]
        conds = [f"v{s} > 0" for s in slots]
        if rule.lsh_bloom:
            bs = schema.bloom_slot[rule.lsh_bloom]
            env[f"_mask{n}"] = _lsh_mask(rule)
            conds.insert(0, f"b{bs} is not None")
            parts.append(f"b{bs}[0] & _mask{n}")
            body.append(f"    b{bs} = r[{bs}]")
        parts += [f"v{s}" for s in slots]
        cond = " and ".join(conds) or "True"
        body.append(f"    if {cond}:")
        body.append(f"        out.append(hash(({', '.join(parts)},)))")
    lines += [f"    v{s} = r[{s}]" for s in sorted(used_slots)]
    lines += body
    lines.append("    return out")
    exec(compile("\n".join(lines), "<blocking rules>", "exec"), env)  # noqa: S102
    fn: Callable[[tuple], list[int]] = env["all_keys"]
    return fn


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
        parts.append((bloom[0] & _lsh_mask(rule),))
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
        self.schema = schema if schema is not None else KeySchema(model)
        self.model = model
        self.interner = interner if interner is not None else Interner()
        self.records: list[tuple] = []
        self.ids: list[str] = []
        self.alive: list[bool] = []
        self.position: dict[str, int] = {}
        self.blocks: dict[int, list[int]] = {}
        self.tf_keys = sorted({lv.tf for c in model.comparisons for lv in c.levels if lv.tf})
        self.tf_counts: dict[str, Counter[int]] = {k: Counter() for k in self.tf_keys}
        self.skipped_blocks = 0

    @property
    def model(self) -> LinkageModel:
        return self._model

    @model.setter
    def model(self, model: LinkageModel) -> None:
        """A new model version; its blocking rules are compiled for both sides."""
        self._model = model
        rules = list(enumerate(model.blocking_rules))
        self._spine_keys = [compile_keys(n, r, self.schema, spine_side=True) for n, r in rules]
        self._all_spine_keys = compile_all_keys(rules, self.schema, spine_side=True)
        self._incoming_keys = [
            (r.max_block, compile_keys(n, r, self.schema, spine_side=False)) for n, r in rules
        ]

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
        for key in self._all_spine_keys(compact):
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
        for max_block, keys_of in self._incoming_keys:
            for key in keys_of(compact):
                bucket = blocks.get(key)
                if bucket is None:
                    continue
                if len(bucket) > max_block:
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
