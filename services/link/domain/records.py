"""Encoded records as the matcher holds them: interned token ids, token sets, Bloom ints.

The link service receives linkage keys (HMAC token strings, Bloom encodings, quality flags)
as the contract's typed :class:`~contracts.events.LinkageKeys`. Strings are interned to
small ints once (equality on ints is what the hot loop does); Bloom filters are Python ints
used as bitsets with their popcount cached, so Dice is two popcounts and an AND. A record
becomes a flat tuple laid out by a :class:`KeySchema` compiled from the model.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.events import LinkageKeys, QualityFlag
from services.link.domain.model import LinkageModel

__all__ = [
    "Bloom",
    "EncodedRecord",
    "Interner",
    "KeySchema",
    "RecurringKeys",
    "bloom_to_int",
    "dice",
    "token_id",
    "with_history",
]

Bloom = tuple[int, int]  # (bits, popcount)


def token_id(token: str) -> int:
    """A stable positive 62-bit id of a token string (0 is reserved for missing).

    Tokens are keyed HMAC outputs, so a short hash of them is as good as the token for
    equality (collision odds ~2**-62 per pair), needs no shared table, and is the same in
    every process: encoding workers can lay out compact records on their own."""
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 2) | 1


class Interner:
    """Token string -> int id (0 means missing), shared by spine and incoming records.

    Stateless (ids are :func:`token_id`); kept as an object so an index can be given a
    different id scheme in tests."""

    __slots__ = ()

    @staticmethod
    def get(token: str) -> int:
        return token_id(token)

    @staticmethod
    def lookup(token: str) -> int:
        return token_id(token)


class RecurringKeys:
    """The compact forms of keys that recur from record to record, kept (bounded): names,
    date and postcode parts and their token sets, and the Bloom encodings of names, so laying
    out many records (:class:`~services.link.domain.part_layout.PartLayouts`) makes each form
    once.

    The forms are those :meth:`KeySchema.compact` makes (test_part_layout holds it); they are
    immutable (ints, frozensets, tuples), so records share them safely."""

    __slots__ = ("_blooms", "_ids", "_sets", "limit")

    def __init__(self, limit: int = 1 << 18) -> None:
        self.limit = limit
        self._ids: dict[str, int] = {}
        self._sets: dict[Any, frozenset[int]] = {}
        self._blooms: dict[Any, Bloom | None] = {}

    def id(self, token: str) -> int:
        found = self._ids.get(token)
        if found is None:
            found = token_id(token)
            if len(self._ids) < self.limit:
                self._ids[token] = found
        return found

    def ids(self, tokens: str | Sequence[str]) -> frozenset[int]:
        try:
            found = self._sets.get(tokens)
        except TypeError:  # a list: not kept
            return _id_set(tokens, token_id)
        if found is None:
            found = _id_set(tokens, self.id)
            if len(self._sets) < self.limit:
                self._sets[tokens] = found
        return found

    def bloom(self, value: int | bytes | str | None) -> Bloom | None:
        try:
            return self._blooms[value]
        except KeyError:
            pass
        bits = bloom_to_int(value)
        found = (bits, bits.bit_count()) if bits else None
        if len(self._blooms) < self.limit >> 1:  # a bitset is ~150 bytes: keep fewer
            self._blooms[value] = found
        return found


def _id_set(tokens: str | Sequence[str], get: Any) -> frozenset[int]:
    if not tokens:
        return frozenset()
    if isinstance(tokens, str):
        return frozenset((get(tokens),))
    return frozenset(get(x) for x in tokens if x)


def bloom_to_int(value: int | bytes | str | None) -> int:
    """A Bloom encoding as an int bitset: ints pass through, bytes are big-endian, strings are
    base64url (as published on the bus) or hex."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray):
        return int.from_bytes(value, "big")
    text = value.strip()
    try:
        pad = "=" * (-len(text) % 4)
        return int.from_bytes(base64.urlsafe_b64decode(text + pad), "big")
    except (ValueError, TypeError):
        return int(text, 16)


def dice(a: Bloom | None, b: Bloom | None) -> float:
    """Dice coefficient 2|A∩B|/(|A|+|B|) of two Bloom encodings (0 when either is empty)."""
    if not a or not b:
        return 0.0
    total = a[1] + b[1]
    return 2.0 * (a[0] & b[0]).bit_count() / total if total else 0.0


PREVIOUS_POSTCODE_UNITS = "previous_postcode_units"
"""The token set link derives from an address history: its postcode units but the current."""


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """One record's linkage keys as link matches on them (no clear identifier).

    ``tokens`` holds single tokens and token sets (tuples) by key name; ``flags`` are
    :class:`~contracts.events.QualityFlag` s, the names the model's predicates use.
    """

    record_id: str
    tokens: Mapping[str, str | Sequence[str]]
    blooms: Mapping[str, Any]
    flags: frozenset[QualityFlag] = frozenset()

    @classmethod
    def of(
        cls,
        record_id: str,
        tokens: Mapping[str, Any],
        blooms: Mapping[str, Any] | None = None,
        flags: Iterable[QualityFlag] = (),
    ) -> EncodedRecord:
        return cls(record_id, dict(tokens), dict(blooms or {}), frozenset(flags))

    @classmethod
    def from_keys(cls, record_id: str, keys: LinkageKeys) -> EncodedRecord:
        """From the contract's linkage keys. Postcode units of an address history other
        than the current one become the token set ``previous_postcode_units``."""
        tokens: dict[str, Any] = dict(keys.hmac_tokens)
        for name, values in keys.token_sets.items():
            tokens[name] = tuple(values)
        current = tokens.get("postcode_unit")
        previous = {
            unit
            for a in keys.addresses
            if (unit := a.hmac_tokens.get("postcode_unit")) and unit != current
        }
        if previous:
            tokens[PREVIOUS_POSTCODE_UNITS] = tuple(sorted(previous))
        return cls(record_id, tokens, dict(keys.bloom_filters), keys.flags)

    def to_json(self) -> str:
        """The record as link stores it (token sets as lists, flags by value)."""
        return json.dumps(
            {
                "tokens": {k: v if isinstance(v, str) else list(v) for k, v in self.tokens.items()},
                "blooms": dict(self.blooms),
                "flags": sorted(f.value for f in self.flags),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, record_id: str, text: str | bytes) -> EncodedRecord:
        """A record :meth:`to_json` stored."""
        data = json.loads(text)
        tokens = {k: v if isinstance(v, str) else tuple(v) for k, v in data["tokens"].items()}
        return cls(
            record_id,
            tokens,
            data["blooms"],
            frozenset(QualityFlag(f) for f in data["flags"]),
        )


def with_history(new: EncodedRecord, old: EncodedRecord) -> EncodedRecord:
    """A changed spine person stays findable by what they were: the old surname joins the
    previous surnames (and all surnames), the old postcode units the previous ones."""
    tokens = dict(new.tokens)

    def tokens_of(rec: EncodedRecord, key: str) -> set[str]:
        v = rec.tokens.get(key)
        if not v:
            return set()
        return {v} if isinstance(v, str) else set(v)

    prev = tokens_of(new, "previous_surnames") | tokens_of(old, "previous_surnames")
    old_surname, new_surname = old.tokens.get("surname"), new.tokens.get("surname")
    if isinstance(old_surname, str) and old_surname and old_surname != new_surname:
        prev.add(old_surname)
    if prev:
        tokens["previous_surnames"] = tuple(sorted(prev))
        tokens["surnames"] = tuple(sorted(tokens_of(new, "surnames") | prev))
    units = tokens_of(new, PREVIOUS_POSTCODE_UNITS) | tokens_of(old, PREVIOUS_POSTCODE_UNITS)
    units |= tokens_of(old, "postcode_unit")
    units -= tokens_of(new, "postcode_unit")
    if units:
        tokens[PREVIOUS_POSTCODE_UNITS] = tuple(sorted(units))
    else:
        tokens.pop(PREVIOUS_POSTCODE_UNITS, None)
    return EncodedRecord(new.record_id, tokens, new.blooms, new.flags)


class KeySchema:
    """Which keys the model reads, and in which slot of the compact tuple each lives."""

    def __init__(self, model: LinkageModel) -> None:
        tokens: set[str] = set()
        lists: set[str] = set()
        blooms: set[str] = set()

        def walk(pred: dict[str, Any]) -> None:
            if "eq" in pred:
                keys = pred["eq"] if isinstance(pred["eq"], list) else [pred["eq"]]
                tokens.update(keys)
            elif "in" in pred:
                left, right = pred["in"]
                tokens.add(left)
                lists.add(right)
            elif "overlap" in pred:
                keys = pred["overlap"] if isinstance(pred["overlap"], list) else [pred["overlap"]]
                lists.update(keys)
            elif "dice" in pred:
                blooms.add(pred["dice"])
            elif "all" in pred or "any" in pred:
                for p in pred.get("all", pred.get("any", [])):
                    walk(p)
            elif "not" in pred:
                walk(pred["not"])

        for c in model.comparisons:
            for lv in c.levels:
                walk(lv.when)
        for c in model.comparisons:
            tokens.update(k for k in c.needs if k not in lists)
            tokens.update(k for k in c.needs_any if k not in lists and k not in blooms)
        for rule in (*model.blocking_rules, *model.training_rules):
            tokens.update(rule.left)
            tokens.update(rule.spine_keys)
            if rule.lsh_bloom:
                blooms.add(rule.lsh_bloom)
        tokens = {t for t in tokens if not t.endswith("#token")} - lists
        self.token_keys = tuple(sorted(tokens))
        self.list_keys = tuple(sorted(lists))
        self.bloom_keys = tuple(sorted(blooms))
        self.slot: dict[str, int] = {}
        for k in self.token_keys:
            self.slot[k] = len(self.slot)
        self.list_slot: dict[str, int] = {}
        n = len(self.token_keys)
        for i, k in enumerate(self.list_keys):
            self.list_slot[k] = n + i
        n += len(self.list_keys)
        self.bloom_slot = {k: n + i for i, k in enumerate(self.bloom_keys)}
        n += len(self.bloom_keys)
        self.flags_slot = n
        self.width = n + 1

    def compact(
        self, rec: EncodedRecord, interner: Interner | None = None, *, grow: bool = True
    ) -> tuple:
        """The flat tuple the engine compares (token ids, id sets, (bits, popcount), flags).

        ``interner`` and ``grow`` are kept for callers of the earlier interning scheme; ids are
        :func:`token_id` and need no table. A batch lays records out from their keys' parts
        instead (:class:`~services.link.domain.part_layout.PartLayouts`), to the same tuple."""
        get = token_id if interner is None else interner.get
        out: list[Any] = []
        toks = rec.tokens
        for k in self.token_keys:
            v = toks.get(k)
            if v and not isinstance(v, str):
                v = next(iter(v), None)
            out.append(get(v) if v else 0)
        for k in self.list_keys:
            v = toks.get(k)
            if not v:
                out.append(frozenset())
            elif isinstance(v, str):
                out.append(frozenset((get(v),)))
            else:
                out.append(frozenset(get(x) for x in v if x))
        for k in self.bloom_keys:
            bits = bloom_to_int(rec.blooms.get(k))
            out.append((bits, bits.bit_count()) if bits else None)
        out.append(rec.flags)
        return tuple(out)
