"""No output of the split holds an input identifier in clear or as an unkeyed hash."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from contracts.events import LinkageKeysPublished
from services.pseudonymise.domain import Pseudonymiser, UnclassifiedFieldError
from tests.leakscan import find_leaks
from tests.unit.pseudonymise import records

# Distinctive canaries; the dates of birth are not Mondays (a Monday is its own week of birth).
CANARY_CHILD = {
    "record_id": "CANARY-CHILD-731",
    "case_id": "CANARY-CASE-404",
    "forename": "Quillon-Maredudd",
    "middle_names": "Bartholomew Zebedee",
    "surname": "Featherstonehaugh",
    "date_of_birth": "2014-07-17",
    "nhs_number": "943 476 5919",
    "address": {
        "line_1": "17 Zwinglian Crescent",
        "line_2": "Llanfairpwllgwyngyll",
        "postcode": "LL77 3AB",
    },
}
CANARY_ADULT = {
    "record_id": "CANARY-ADULT-882",
    "case_id": "CANARY-CASE-404",
    "forename": "Gwenhwyfar",
    "surname": "Ffoulkes-Ysbyty",
    "previous_surnames": ["Cadwaladr", "Throckmorton"],
    "date_of_birth": "1987-02-12",
    "nhs_number": "4010232137",
    "address": {"line_1": "Flat 9, Ystrad Mynach Court", "postcode": "CF83 1QW"},
}
CANARY_SPINE = {
    "record_id": "CANARY-WDS-5150",
    "forename": "Aneirin",
    "middle_names": "Tegwedd",
    "surname": "Prytherch",
    "previous_surnames": ["Vaughan-Lloyd"],
    "date_of_birth": "1979-10-31",
    "nhs_number": "9876543210",
    "date_of_death": "2021-08-19",
    "address_history": [
        {
            "address": {"line_1": "3 Penrhiwceiber Terrace", "postcode": "CF37 2ZY"},
            "from_date": "1999-05-06",
            "to_date": "2010-12-24",
        },
        {
            "address": {"line_1": "88 Quernmore Gardens", "postcode": "SA11 4JQ"},
            "from_date": "2011-01-07",
        },
    ],
}
CANARY_CASE = {
    "record_id": "CANARY-CASE-404",
    "court_case_number": "CF99C77123",
    "outcomes": [{"child_record_id": "CANARY-CHILD-731", "order_made": "care"}],
}


def canaries() -> list[str]:
    values: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key not in ("from_date", "to_date", "order_made"):
                    collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)
        elif isinstance(value, str):
            values.append(value)

    for record in (CANARY_CHILD, CANARY_ADULT, CANARY_SPINE, CANARY_CASE):
        collect(record)
    # the pieces of multi-word values are identifiers too
    values += ["Quillon", "Maredudd", "Bartholomew", "Zebedee", "Ffoulkes", "Ysbyty",
               "Vaughan", "Penrhiwceiber", "Zwinglian", "Quernmore"]  # fmt: skip
    return sorted({v for v in values if len(v) >= 6})


def split_all(p: Pseudonymiser) -> list[Any]:
    return [
        p.split(records.child(**CANARY_CHILD), source="cafcass-cymru", record_kind="child",
                roles=records.CHILD_ROLES),
        p.split(records.adult(**CANARY_ADULT), source="cafcass-cymru", record_kind="adult-party",
                roles=records.ADULT_ROLES),
        p.split(records.spine(**CANARY_SPINE), source="wds", record_kind="spine-person",
                roles=records.SPINE_ROLES),
        p.split(records.case(**CANARY_CASE), source="cafcass-cymru", record_kind="case",
                roles=records.CASE_ROLES),
    ]  # fmt: skip


WIRE = {
    "record_token": "A" * 22,
    "record_type": "child",
    "source": "cafcass-cymru",
    "record_version": 1,
    "key_version": 1,
}


def test_no_split_output_holds_an_identifier_in_clear_or_as_an_unkeyed_hash(
    pseudonymiser: Pseudonymiser,
) -> None:
    results = split_all(pseudonymiser)
    # The linkage keys as they go on the wire (the event's JSON form of every field).
    halves = [
        [r.content, LinkageKeysPublished.of(r.linkage, **WIRE).model_dump(mode="json")]
        for r in results
    ]
    blob = json.dumps(halves, ensure_ascii=False)
    blob += json.dumps(halves)  # ASCII-escaped too
    blob += "".join(repr(r) for r in results) + repr(pseudonymiser)
    assert find_leaks(blob, canaries()) == []


def test_errors_raised_by_the_split_hold_no_identifier(pseudonymiser: Pseudonymiser) -> None:
    with pytest.raises(UnclassifiedFieldError) as raised:
        pseudonymiser.split(
            {**records.child(**CANARY_CHILD), "notes": "Featherstonehaugh"},
            source="cafcass-cymru",
            record_kind="child",
            roles=records.CHILD_ROLES,
        )
    assert find_leaks(str(raised.value) + repr(raised.value), canaries()) == []


# The scanner itself: it must find what it claims to find.

CANARY = "Featherstonehaugh"


@pytest.mark.parametrize(
    "leak",
    [
        f"name={CANARY}",
        f"name={CANARY.upper()}",
        "name=featherstonehaugh",
        hashlib.sha256(CANARY.encode()).hexdigest(),
        hashlib.sha256(CANARY.encode()).hexdigest().upper(),
        hashlib.sha256(CANARY.lower().encode()).hexdigest()[:32],  # truncated, folded
        hashlib.md5(CANARY.encode()).hexdigest(),
        hashlib.sha1(CANARY.encode()).hexdigest(),
        base64.b64encode(hashlib.sha256(CANARY.encode()).digest()).decode(),
        base64.urlsafe_b64encode(hashlib.sha256(CANARY.lower().encode()).digest()[:16]).decode(),
        base64.b64encode(hashlib.sha512(CANARY.encode()).digest()).decode(),
        base64.b64encode(CANARY.encode()).decode(),
        CANARY.encode().hex(),
    ],
)
def test_the_scanner_finds_clear_encoded_and_unkeyed_hashed_forms(leak: str) -> None:
    assert find_leaks(f'{{"x": "{leak}"}}', [CANARY])


def test_the_scanner_finds_normalised_forms_of_accented_and_spaced_values() -> None:
    assert find_leaks("sionsmithjones", ["Siôn Smith-Jones"])
    assert find_leaks(b"nhs:9434765919", ["943 476 5919"])
    assert find_leaks(json.dumps({"n": "Siôn Ellis"}), ["Siôn Ellis"])
    digest = hashlib.sha1(b"9434765919").hexdigest()
    assert find_leaks(digest, ["943 476 5919"])


def test_the_scanner_does_not_flag_keyed_tokens_or_unrelated_text(
    pseudonymiser: Pseudonymiser,
) -> None:
    token = pseudonymiser.token("surname", CANARY.lower())
    assert find_leaks(json.dumps({"surname": token, "note": "feather"}), [CANARY]) == []


def test_the_scanner_refuses_canaries_too_short_to_be_distinctive() -> None:
    with pytest.raises(ValueError):
        find_leaks("anything", ["Ann"])
