"""Laying out a batch of records from the parts of their keys, each recurring part once.

A person's linkage keys are mostly made of parts that recur from record to record: the keys
of a forename, of a surname with the previous ones, of a postcode, of an address (the
pseudonymiser makes each once per distinct value and hands the same object back). Merging
them into one record's keys and laying those out again (:meth:`KeySchema.compact`) costs
most of a batch's time after the HMACs, so :class:`PartLayouts` lays each part out once, as
slot assignments, and a record's tuple is its parts' assignments plus the few keys the
record holds alone (NHS number, date of birth, sex, full name, address history).

The tuple is the one :meth:`KeySchema.compact` makes of :meth:`EncodedRecord.from_keys` of
the merged keys, slot for slot (a test holds it): token keys take a set's first token,
token sets override tokens of the same name, and the postcode units of an address history
other than the current one become ``previous_postcode_units``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.link.domain.records import PREVIOUS_POSTCODE_UNITS, KeySchema, RecurringKeys

__all__ = ["KeyParts", "PartLayouts"]

_UNIT = "postcode_unit"


class _Part(Protocol):
    tokens: tuple[tuple[str, str], ...]
    sets: tuple[tuple[str, tuple[str, ...]], ...]
    blooms: tuple[tuple[str, str], ...]


class _Address(Protocol):
    hmac_tokens: Mapping[str, str]


class KeyParts(Protocol):
    """A record's keys in parts (what pseudonymise's ``LinkageParts`` is)."""

    parts: tuple[_Part, ...]
    tokens: Mapping[str, str]
    sets: Mapping[str, tuple[str, ...]]
    blooms: Mapping[str, str]
    addresses: tuple[_Address, ...]
    flags: frozenset[Any]


Slots = tuple[tuple[int, Any], ...]


class _Layout:
    """One part's slot assignments: from its tokens, its token sets and its Bloom filters
    (applied in that order across a record's parts, as merging would), and its postcode
    unit token for the history's comparison."""

    __slots__ = ("blooms", "part", "sets", "tokens", "unit")

    def __init__(self, part: _Part, tokens: Slots, sets: Slots, blooms: Slots, unit: Any):
        self.part = part  # held, so the id it is found by is never another object's
        self.tokens, self.sets, self.blooms, self.unit = tokens, sets, blooms, unit


class PartLayouts:
    """Each recurring part's slots in ``schema``'s compact tuple, made once (bounded)."""

    __slots__ = ("_empty", "_layouts", "_memo", "limit", "schema")

    def __init__(self, schema: KeySchema, memo: RecurringKeys, limit: int = 1 << 18) -> None:
        self.schema, self._memo, self.limit = schema, memo, limit
        self._layouts: dict[int, _Layout] = {}
        nt, nl, nb = len(schema.token_keys), len(schema.list_keys), len(schema.bloom_keys)
        empty = memo.ids(())
        self._empty: list[Any] = [0] * nt + [empty] * nl + [None] * nb + [frozenset()]

    def compact(self, keys: KeyParts) -> tuple:
        """The compact tuple of a record whose keys come in parts."""
        row = self._empty.copy()
        found = self._layouts.get
        layouts = []
        for part in keys.parts:
            lay = found(id(part))
            layouts.append(lay if lay is not None and lay.part is part else self._layout(part))
        # Merged keys' order: tokens, then token sets over them, then the history's units
        # (the loops are spelt out: this runs for every record of a batch).
        for lay in layouts:
            for slot, value in lay.tokens:
                row[slot] = value
        slot_of, token_id = self.schema.slot, self._memo.id
        for name, token in keys.tokens.items():  # the record's own: NHS number, date of birth
            if (slot := slot_of.get(name)) is None:
                self._assign(row, ((name, token),))
            else:
                row[slot] = token_id(token) if token else 0
        for lay in layouts:
            for slot, value in lay.sets:
                row[slot] = value
        self._assign(row, keys.sets.items())
        if keys.addresses:
            self._history(row, layouts, keys)
        for lay in layouts:
            for slot, value in lay.blooms:
                row[slot] = value
        if keys.blooms:
            bloom, bloom_slot = self._memo.bloom, self.schema.bloom_slot
            for name, text in keys.blooms.items():
                if (slot := bloom_slot.get(name)) is not None:
                    row[slot] = bloom(text)
        row[-1] = keys.flags
        return tuple(row)

    def _layout(self, part: _Part) -> _Layout:
        unit: Any = None
        for name, token in part.tokens:
            if name == _UNIT:
                unit = token
        for name, tokens in part.sets:
            if name == _UNIT:
                unit = tokens
        bloom, bloom_slot = self._memo.bloom, self.schema.bloom_slot
        lay = _Layout(
            part,
            tuple(self._slots(part.tokens)),
            tuple(self._slots(part.sets)),
            tuple((bloom_slot[n], bloom(b)) for n, b in part.blooms if n in bloom_slot),
            unit,
        )
        if len(self._layouts) < self.limit:
            self._layouts[id(part)] = lay
        return lay

    def _slots(self, items: Iterable[tuple[str, Any]]) -> Iterable[tuple[int, Any]]:
        """What :meth:`KeySchema.compact` puts in the slot of each named key it reads."""
        slot_of, list_slot_of = self.schema.slot, self.schema.list_slot
        memo = self._memo
        for name, value in items:
            if (slot := slot_of.get(name)) is not None:
                if value and not isinstance(value, str):
                    value = next(iter(value), None)
                yield slot, memo.id(value) if value else 0
            elif (slot := list_slot_of.get(name)) is not None:
                yield slot, memo.ids(value or ())

    def _assign(self, row: list[Any], items: Iterable[tuple[str, Any]]) -> None:
        for slot, value in self._slots(items):
            row[slot] = value

    def _history(self, row: list[Any], layouts: Sequence[_Layout], keys: KeyParts) -> None:
        # EncodedRecord.from_keys: the current unit is the merged keys' (sets over tokens).
        current: Any = None
        for lay in layouts:
            if isinstance(lay.unit, str):
                current = lay.unit
        current = keys.tokens.get(_UNIT, current)
        for lay in layouts:
            if isinstance(lay.unit, tuple):
                current = lay.unit
        current = keys.sets.get(_UNIT, current)
        previous = {
            unit for a in keys.addresses if (unit := a.hmac_tokens.get(_UNIT)) and unit != current
        }
        if previous:
            self._assign(row, ((PREVIOUS_POSTCODE_UNITS, tuple(sorted(previous))),))
