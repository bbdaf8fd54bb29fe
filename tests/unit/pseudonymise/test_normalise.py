"""Name normalisation, variant tables and phonetic codes."""

from __future__ import annotations

import pytest

from services.pseudonymise.domain import (
    canonical_forename,
    canonical_surname,
    fold,
    normalise_address,
    normalise_name,
    phonetic,
    phonetic_nysiis,
)
from services.pseudonymise.domain.nicknames import (
    FORENAME_BY_SEX,
    FORENAME_GROUPS,
    FORENAME_VARIANTS,
)


def canonical(text: str) -> str:
    first = normalise_name(text).first
    assert first is not None
    return canonical_forename(first)


def test_accents_are_stripped_and_case_folded() -> None:
    assert fold("Siôn") == "sion"
    assert fold("Llŷr") == "llyr"
    assert fold("ZOË") == "zoe"
    assert fold("Søren Łukasz") == "soren lukasz"
    assert normalise_name("Siân").tokens == ("sian",)


def test_hyphenated_names_give_their_pieces_and_the_joined_form() -> None:
    name = normalise_name("Smith-Jones")
    assert name.tokens == ("smith", "jones")
    assert name.joined == "smithjones"
    assert set(name.forms) == {"smith", "jones", "smithjones"}


def test_a_double_barrelled_name_with_a_space_joins_like_the_hyphenated_one() -> None:
    assert normalise_name("Smith Jones").joined == normalise_name("Smith-Jones").joined


def test_apostrophes_vanish_and_mc_mac_prefixes_are_kept_as_written() -> None:
    assert normalise_name("O'Brien").tokens == ("obrien",)
    assert normalise_name("O\u2019Brien").tokens == ("obrien",)
    assert normalise_name("O Brien").tokens == ("obrien",)
    assert normalise_name("McDonald").tokens == ("mcdonald",)
    assert normalise_name("Mc Donald").tokens == ("mcdonald",)
    assert normalise_name("MacDonald").tokens == ("macdonald",)


def test_titles_and_generational_suffixes_are_dropped() -> None:
    assert normalise_name("Mrs. Catrin Evans").tokens == ("catrin", "evans")
    assert normalise_name("Dr Huw Price Jnr").tokens == ("huw", "price")
    assert normalise_name("Miss").tokens == ("miss",)  # a lone word is kept: not a title


@pytest.mark.parametrize(
    "text",
    ["Baby", "baby", "BABY OF JONES", "Baby of Sarah Evans", "Baby Jones", "Unknown", "Infant",
     "NK", "N/K", "Twin 1", "Unknown Male", "Not Known", "Newborn", "Baby Girl"],
)  # fmt: skip
def test_placeholder_names_are_flagged_and_unusable(text: str) -> None:
    name = normalise_name(text)
    assert name.placeholder
    assert not name.usable


@pytest.mark.parametrize("text", ["Babette", "Nia", "Twinkle-Jones", "Knox", "Unwin"])
def test_real_names_that_resemble_placeholders_are_not_flagged(text: str) -> None:
    assert not normalise_name(text).placeholder


def test_empty_names_are_not_usable() -> None:
    assert not normalise_name("").usable
    assert not normalise_name(None).usable
    assert not normalise_name(" - ").usable


@pytest.mark.parametrize(
    ("variants", "key"),
    [
        (["Dafydd", "Dai", "Dave", "Davy", "David", "Dewi"], "david"),
        (["Siôn", "Sion", "Ioan", "Jack", "Johnny", "John"], "john"),
        (["Gwilym", "Bill", "Billy", "Will", "William"], "william"),
        (["Rhys", "Rees", "Reece"], "rhys"),
        (["Llywelyn", "Llewellyn"], "llewellyn"),
        (["Huw", "Hugh"], "hugh"),
        (["Ieuan", "Evan"], "evan"),
        (["Siân", "Sian", "Jane", "Jean"], "jane"),
        (["Catrin", "Cath", "Kate", "Katie", "Catherine", "Katherine", "Kathryn"], "catherine"),
        (["Elin", "Ellen", "Helen"], "helen"),
        (["Mared", "Margaret", "Maggie", "Peggy"], "margaret"),
        (["Bob", "Rob", "Robbie", "Bobby", "Robert"], "robert"),
        (["Liz", "Beth", "Betty", "Lizzie", "Elizabeth"], "elizabeth"),
    ],
)
def test_welsh_and_english_variants_and_nicknames_share_one_canonical_form(
    variants: list[str], key: str
) -> None:
    assert {canonical(v) for v in variants} == {key}


def test_names_without_a_variant_are_their_own_canonical_form() -> None:
    assert canonical_forename("zephaniah") == "zephaniah"


def test_a_short_form_both_sexes_use_takes_the_group_of_the_records_sex() -> None:
    assert canonical_forename("sam", 1) == canonical_forename("samuel", 1) == "samuel"
    assert canonical_forename("sam", 2) == canonical_forename("samantha", 2) == "samantha"
    assert canonical_forename("charlie", 2) == canonical_forename("lottie") == "charlotte"
    assert canonical_forename("nicky", 1) == canonical_forename("nick") == "nicholas"
    # Unknown sex: not guessed, so it agrees with neither Samuel nor Samantha.
    assert canonical_forename("sam") == canonical_forename("sam", 9) == "sam"


def test_every_sexed_short_form_points_at_a_canonical_key_and_is_in_no_group() -> None:
    for short, groups in FORENAME_BY_SEX.items():
        assert short not in FORENAME_VARIANTS, short
        for key in groups:
            assert canonical_forename(key) == key, key


def test_the_variant_table_is_large_and_every_variant_has_one_group() -> None:
    assert len(FORENAME_VARIANTS) >= 300
    seen: dict[str, str] = {}
    for group, variants in FORENAME_GROUPS.items():
        for variant in variants:
            assert seen.setdefault(variant, group) == group, variant


def test_surname_spelling_variants_share_a_canonical_form() -> None:
    assert canonical_surname("davis") == canonical_surname("davies")
    assert canonical_surname("pryce") == canonical_surname("price")
    assert canonical_surname("zebedee") == "zebedee"


def test_phonetic_codes_bring_welsh_and_anglicised_spellings_together() -> None:
    assert phonetic("llywelyn") == phonetic("llewellyn")
    assert phonetic("dafydd") == phonetic("david")
    assert phonetic_nysiis("davies") == phonetic_nysiis("davis")
    assert phonetic("smith") != phonetic("jones")


def test_addresses_are_folded_and_common_abbreviations_expanded() -> None:
    assert normalise_address(["Flat 2, 14 St. Mary's Rd", "Caerdydd"]) == (
        "flat", "2", "14", "street", "marys", "road", "caerdydd",
    )  # fmt: skip
    assert normalise_address("3 Heol y Nant") == normalise_address("3 Road y Nant")


def test_an_empty_name_has_no_forms_so_no_record_shares_an_empty_token() -> None:
    from services.pseudonymise.domain.normalise import EMPTY_NAME

    assert EMPTY_NAME.forms == ()
    assert normalise_name("").forms == ()
    assert "" not in normalise_name("Mary-Jane").forms
