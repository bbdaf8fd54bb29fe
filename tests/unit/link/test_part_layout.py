"""A record laid out from its key parts is the tuple the link domain makes of merged keys."""

from __future__ import annotations

import hashlib

import pytest

from contracts.events import EncodedAddress, QualityFlag
from fjo.link_batch import ROLES
from services.link.domain import EncodedRecord, KeySchema, PartLayouts, RecurringKeys
from services.link.domain.default_model import default_model
from services.pseudonymise.domain import (
    KeyPart,
    KeyRing,
    LinkageParts,
    MasterKey,
    OnsPostcodeLookup,
    Pseudonymiser,
)

SCHEMA = KeySchema(default_model())


def _reference(parts: LinkageParts) -> tuple:
    return SCHEMA.compact(EncodedRecord.from_keys("r", parts.keys()))


def _part(tokens=(), sets=(), blooms=(), flags=frozenset()) -> KeyPart:  # type: ignore[no-untyped-def]
    return KeyPart(tuple(tokens), tuple(sets), tuple(blooms), frozenset(flags))


U0, U1, U2 = (f"unit{i}".ljust(22, "0") for i in range(3))  # tokens are 16+ characters


def _address(unit: str | None) -> EncodedAddress:
    return EncodedAddress(hmac_tokens={"postcode_unit": unit} if unit else {})


FORENAME = _part(
    tokens=[("forename", "f1"), ("forename_phonetic", "fp")],
    sets=[("given_names", ("f1", "m1")), ("middle_names", ("m1",))],
    blooms=[("forename", "AAEC")],
)
SURNAME = _part(
    tokens=[("surname", "s1")],
    sets=[("surnames", ("s0", "s1")), ("previous_surnames", ("s0",))],
    flags={QualityFlag.SURNAME_PLACEHOLDER},
)
POSTCODE = _part(tokens=[("postcode_district", "d1"), ("postcode_unit", U1)])


CASES = {
    "every kind of key": LinkageParts(
        (FORENAME, SURNAME, POSTCODE),
        {"nhs": "n1", "dob_full": "b1", "sex": "x"},
        {},
        {"full_name": "AQID"},
        (_address(U0), _address(U1), _address(None)),
        frozenset({QualityFlag.SURNAME_PLACEHOLDER, QualityFlag.NHS_NUMBER_INVALID}),
    ),
    # Merged keys: a token set overrides a token of the same name whichever part came
    # first, and a later part's token a former's; a token key reads a set's first token.
    "a set over an earlier token and a later token over a former": LinkageParts(
        (
            _part(tokens=[("surname", "early"), ("forename", "a")], sets=[("forename", ())]),
            _part(tokens=[("surname", "late")], sets=[("given_names", ("z", "y"))]),
            _part(sets=[("surname", ("set-first", "b"))]),
        ),
        {"sex": ""},
        {"given_names": ("own",)},
        {},
        (),
        frozenset(),
    ),
    # The history's units against a current unit a set overrode: merged keys compare a
    # unit with the set, so neither unit is taken for the current one.
    "the current unit as a set": LinkageParts(
        (POSTCODE, _part(sets=[("postcode_unit", (U2,))])),
        {},
        {},
        {},
        (_address(U1), _address(U2)),
        frozenset(),
    ),
    # A list is not kept by the memo (unhashable) and is laid out as its tuple would be.
    "a list of tokens": LinkageParts((), {}, {"given_names": ["b", "a"]}, {}, (), frozenset()),  # type: ignore[dict-item]
    "no keys at all": LinkageParts((), {}, {}, {}, (), frozenset()),
}


@pytest.mark.parametrize("name", CASES)
def test_a_record_laid_out_from_parts_is_the_tuple_of_its_merged_keys(name: str) -> None:
    parts = CASES[name]
    layouts = PartLayouts(SCHEMA, RecurringKeys())
    assert layouts.compact(parts) == _reference(parts)
    assert layouts.compact(parts) == _reference(parts)  # its parts' layouts kept


def test_the_layout_tells_the_cases_apart() -> None:
    # The reference is not trivially equal for every input (so the test above can fail).
    layouts = PartLayouts(SCHEMA, RecurringKeys())
    tuples = {layouts.compact(parts) for parts in CASES.values()}
    assert len(tuples) == len(CASES)


def test_a_part_past_the_limit_or_rebuilt_equal_is_laid_out_afresh_the_same() -> None:
    parts = CASES["every kind of key"]
    kept_none = PartLayouts(SCHEMA, RecurringKeys(limit=1), limit=0)  # forms made afresh
    assert kept_none.compact(parts) == _reference(parts)
    layouts = PartLayouts(SCHEMA, RecurringKeys())
    layouts.compact(parts)
    # An equal part that is another object (the pseudonymiser's cache was full) is not
    # mistaken for a kept one, nor is another part that took a dead one's id.
    copy = LinkageParts(
        tuple(_part(p.tokens, p.sets, p.blooms, p.flags) for p in parts.parts),
        parts.tokens,
        parts.sets,
        parts.blooms,
        parts.addresses,
        parts.flags,
    )
    other = LinkageParts((_part(tokens=[("surname", "zz")]),), {}, {}, {}, (), frozenset())
    assert layouts.compact(copy) == _reference(parts)
    assert layouts.compact(other) == _reference(other)


def test_a_real_pseudonymisers_parts_give_the_tuple_of_its_split() -> None:
    pseudonymiser = Pseudonymiser(
        KeyRing.single(MasterKey(hashlib.sha256(b"part layout").digest())), OnsPostcodeLookup([])
    )
    record = {
        "id": "1", "given_name": "Anne-Marie", "surname": "Jones", "sex": "2",
        "date_of_birth": "2012-03-04", "postcode": "CF10 1AA", "address": "1 High St",
        "nhs_number": "9434765919", "previous_surnames": ["Evans"],
        "address_history": [{"postcode": "SA1 1AA"}, {"postcode": "CF10 1AA"}],
    }  # fmt: skip
    split = pseudonymiser.split(record, source="b", record_kind="person", roles=ROLES)
    layouts = PartLayouts(SCHEMA, RecurringKeys())
    laid_out = layouts.compact(pseudonymiser.linkage_parts(record, roles=ROLES))
    assert laid_out == SCHEMA.compact(EncodedRecord.from_keys("1", split.linkage))
    previous = SCHEMA.list_slot["previous_postcode_units"]
    assert len(laid_out[previous]) == 1  # SA1 1AA; CF10 1AA is the current unit
