"""Fake linkage keys for link's unit tests: readable stand-ins for pseudonymise's output.

Tokens are "domain:value" strings and Bloom filters hash padded bigrams into 512 bits. The
link domain cannot tell them from real keyed tokens (it only compares them), which is the
point: it never looks inside a token.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from contracts.events import QualityFlag
from services.link.domain import EncodedRecord
from services.pseudonymise.domain.normalise import one_edit_forms

FORENAMES = [
    "olivia",
    "amelia",
    "isla",
    "ava",
    "mia",
    "ivy",
    "lily",
    "rhys",
    "dylan",
    "osian",
    "cerys",
    "ffion",
    "seren",
    "carys",
    "owain",
    "huw",
    "gareth",
    "sian",
    "tomos",
    "elis",
]
SURNAMES = [
    "jones",
    "williams",
    "davies",
    "evans",
    "thomas",
    "roberts",
    "hughes",
    "lewis",
    "morgan",
    "griffiths",
    "edwards",
    "smith",
    "price",
    "rees",
    "jenkins",
    "owen",
]
CANON = {"bill": "william", "will": "william", "dai": "david", "dafydd": "david"}


def _bloom(field: str, text: str) -> int:
    padded = f"_{text}_"
    bits = 0
    for i in range(len(padded) - 1):
        for k in range(8):
            h = hashlib.blake2b(f"{field}|{k}|{padded[i : i + 2]}".encode(), digest_size=4)
            bits |= 1 << (int.from_bytes(h.digest(), "big") % 512)
    return bits


def keys(
    rid: str,
    given: str = "",
    surname: str = "",
    dob: str = "",
    sex: str = "",
    postcode: str = "",
    address: str = "",
    nhs: str = "",
    nhs_valid: bool = True,
    previous_surnames: tuple[str, ...] = (),
) -> EncodedRecord:
    tokens: dict[str, object] = {}
    blooms: dict[str, int] = {}
    flags: set[QualityFlag] = set()
    if given.lower().startswith("baby"):
        flags.add(QualityFlag.FORENAME_PLACEHOLDER)
        given = ""
    if given:
        first = given.split()[0]
        tokens.update(
            forename=f"f:{first}",
            forename_canonical=f"fc:{CANON.get(first, first)}",
            forename_phonetic=f"fp:{first[:3]}",
            given_names=tuple(f"f:{g}" for g in given.split()),
            forename_as_surname=f"s:{first}",
            forename_edits=tuple(f"fe:{form}" for form in one_edit_forms(first)),
        )
        blooms["forename"] = _bloom("forename", first)
    if surname:
        tokens.update(
            surname=f"s:{surname}",
            surname_phonetic=f"sp:{surname[:3]}",
            surnames=tuple(f"s:{s}" for s in (surname, *previous_surnames)),
            surname_as_forename=f"f:{surname}",
        )
        blooms["surname"] = _bloom("surname", surname)
        if previous_surnames:
            tokens["previous_surnames"] = tuple(f"s:{s}" for s in previous_surnames)
    if given or surname:
        blooms["full_name"] = _bloom("full_name", given + surname)
    if dob:
        y, m, d = dob.split("-")
        tokens.update(dob_full=f"d:{dob}", dob_year=f"y:{y}", dob_month=f"m:{m}", dob_day=f"dd:{d}")
        if int(d) <= 12 and d != m:
            tokens["dob_swapped"] = f"d:{y}-{d}-{m}"
        if m == "01" and d == "01":
            flags.add(QualityFlag.DATE_OF_BIRTH_PLACEHOLDER)
    if sex:
        tokens["sex"] = f"x:{sex}"
    if postcode:
        district, inward = postcode.split()
        tokens.update(
            postcode_unit=f"pu:{postcode}",
            postcode_sector=f"ps:{district}{inward[0]}",
            postcode_district=f"pd:{district}",
        )
    if address:
        blooms["address"] = _bloom("address", address)
    if nhs:
        tokens["nhs"] = f"n:{nhs}"
        if not nhs_valid:
            flags.add(QualityFlag.NHS_NUMBER_INVALID)
    return EncodedRecord.of(rid, tokens, blooms, flags)


def population(n: int, seed: int = 3) -> list[EncodedRecord]:
    """``n`` unrelated spine people in households of about three, 25 households per unit."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hh = i // 3
        unit = f"CF{hh // 25 % 40 + 1} {hh % 9 + 1}AB"
        out.append(
            keys(
                f"P{i:05d}",
                rng.choice(FORENAMES),
                rng.choice(SURNAMES),
                f"{rng.randint(1950, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice("MF"),
                unit,
                f"{hh % 97} high street",
                f"{9000000000 + i}",
            )
        )
    return out


def fake_token(value: str) -> str:
    """A contract-shaped token (base64url) standing for a fake readable one."""
    return hashlib.sha256(value.encode()).hexdigest()[:32] + "AAAA"


def linkage_event(rec: EncodedRecord, kind: str = "child", version: int = 1) -> Any:
    """The ``LinkageKeysPublished`` pseudonymise would publish for ``rec``."""
    import base64

    from contracts.events import LinkageKeysPublished

    return LinkageKeysPublished(
        record_token=fake_token(rec.record_id),
        record_type=kind,
        source="wds" if kind == "spine-person" else "cafcass-cymru",
        record_version=version,
        key_version=1,
        hmac_tokens={k: fake_token(v) for k, v in rec.tokens.items() if isinstance(v, str)},
        token_sets={
            k: tuple(sorted(fake_token(x) for x in v))
            for k, v in rec.tokens.items()
            if not isinstance(v, str)
        },
        bloom_filters={
            k: base64.urlsafe_b64encode(v.to_bytes(64, "big")).rstrip(b"=").decode()
            for k, v in rec.blooms.items()
        },
        flags=tuple(f.value for f in rec.flags),
    )
