"""The split: content without identifiers, linkage keys that compare, and quality flags."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events import QualityFlag
from services.pseudonymise.domain import (
    KeyRing,
    OnsPostcodeLookup,
    Pseudonymiser,
    RoleError,
    SplitResult,
    UnclassifiedFieldError,
    dice,
    from_b64,
)
from tests.unit.pseudonymise import records
from tests.unit.pseudonymise.conftest import fixed_key

IDENTIFYING = {
    "record_id", "case_id", "forename", "middle_names", "surname", "previous_surnames",
    "date_of_birth", "nhs_number", "address", "address_history", "postcode",
    "court_case_number", "date_of_death",
}  # fmt: skip


def split_child(p: Pseudonymiser, **overrides: Any) -> SplitResult:
    return p.split(
        records.child(**overrides),
        source="cafcass-cymru",
        record_kind="child",
        roles=records.CHILD_ROLES,
    )


def split_adult(p: Pseudonymiser, **overrides: Any) -> SplitResult:
    return p.split(
        records.adult(**overrides),
        source="cafcass-cymru",
        record_kind="adult-party",
        roles=records.ADULT_ROLES,
    )


def split_spine(p: Pseudonymiser, **overrides: Any) -> SplitResult:
    return p.split(
        records.spine(**overrides),
        source="wds",
        record_kind="spine-person",
        roles=records.SPINE_ROLES,
    )


def test_content_carries_tokens_and_coarse_demographics_but_no_identifier(
    pseudonymiser: Pseudonymiser,
) -> None:
    content = split_child(pseudonymiser).content
    assert content["record_token"] == pseudonymiser.record_token(
        "cafcass-cymru", "child", "CHILD-0001"
    )
    assert content["references"] == {
        "case_id": pseudonymiser.record_token("cafcass-cymru", "case", "CASE-0001")
    }
    assert content["week_of_birth"] == "2016-02-29"
    assert content["sex"] == 1
    assert (content["lsoa"], content["local_authority"], content["area_quality"]) == (
        "W01004699", "W06000015", "exact",
    )  # fmt: skip
    assert content["fields"] == {
        "record_version": 1,
        "extracted_at": "2024-05-01T09:00:00Z",
        "ethnicity": "white",
        "living_situation": "foster-care",
    }
    assert not IDENTIFYING & set(content) and not IDENTIFYING & set(content["fields"])
    assert content["key_version"] == 1


def test_a_reference_gets_the_token_of_the_record_it_points_at(
    pseudonymiser: Pseudonymiser,
) -> None:
    case = pseudonymiser.split(
        records.case(), source="cafcass-cymru", record_kind="case", roles=records.CASE_ROLES
    )
    child = split_child(pseudonymiser)
    assert child.content["references"]["case_id"] == case.content["record_token"]
    # a nested id inside a content field is replaced in place by the record's token
    outcome = case.content["fields"]["outcomes"][0]
    assert outcome == {
        "child_record_id": child.content["record_token"],
        "order_made": "care",
        "order_date": "2017-01-09",
    }
    assert "court_case_number" not in case.content["fields"]
    assert not case.is_person and case.linkage.hmac_tokens == {}


def test_linkage_keys_hold_every_named_token_and_bloom(pseudonymiser: Pseudonymiser) -> None:
    linkage = split_child(pseudonymiser).linkage
    assert set(linkage.hmac_tokens) == {
        "nhs", "dob_full", "dob_year", "dob_month", "dob_day", "dob_year_month", "dob_swapped",
        "sex", "forename", "forename_canonical", "forename_phonetic", "forename_nysiis",
        "forename_as_surname", "surname", "surname_canonical", "surname_phonetic",
        "surname_nysiis", "surname_as_forename",
        "postcode_unit", "postcode_sector", "postcode_district",
    }  # fmt: skip
    assert set(linkage.bloom_filters) == {"forename", "surname", "full_name", "address"}
    assert {"given_names", "middle_names", "surnames"} <= set(linkage.token_sets)
    split = split_child(pseudonymiser)
    assert split.key_version == 1
    assert split.bloom_scheme == pseudonymiser.bloom_scheme
    assert split.record_token == split.content["record_token"]
    for token in linkage.hmac_tokens.values():
        assert len(token) == 22


def test_tokens_are_keyed_tokens_of_the_normalised_values(pseudonymiser: Pseudonymiser) -> None:
    tokens = split_child(pseudonymiser, forename="  DAFYDD ", surname="Évans").linkage.hmac_tokens
    t = pseudonymiser.token
    assert tokens["forename"] == t("forename", "dafydd")
    assert tokens["forename_canonical"] == t("forename_canonical", "david")
    assert tokens["surname"] == t("surname", "evans")
    # Swapped names: each name also in the other's domain, so "Evans, Dafydd" meets "Dafydd
    # Evans" token for token.
    assert tokens["forename_as_surname"] == t("surname", "dafydd")
    assert tokens["surname_as_forename"] == t("forename", "evans")
    assert tokens["nhs"] == t("nhs", "9434765919")
    assert tokens["dob_full"] == t("dob_full", "2016-03-04")
    assert tokens["dob_year"] == t("dob_year", "2016")
    assert tokens["postcode_unit"] == t("postcode_unit", "CF10 4PS")
    assert tokens["postcode_sector"] == t("postcode_sector", "CF10 4")
    assert tokens["postcode_district"] == t("postcode_district", "CF10")


def test_the_same_record_and_key_always_split_the_same_way(
    ring: KeyRing, postcodes: OnsPostcodeLookup
) -> None:
    first = split_child(Pseudonymiser(ring, postcodes))
    again = split_child(Pseudonymiser(ring, postcodes))
    assert first == again


def test_another_key_changes_every_token_and_encoding(
    pseudonymiser: Pseudonymiser, postcodes: OnsPostcodeLookup
) -> None:
    other = Pseudonymiser(KeyRing.single(fixed_key("another")), postcodes)
    mine, theirs = split_child(pseudonymiser), split_child(other)
    assert mine.content["record_token"] != theirs.content["record_token"]
    for name, token in mine.linkage.hmac_tokens.items():
        assert theirs.linkage.hmac_tokens[name] != token
    for name, bloom in mine.linkage.bloom_filters.items():
        assert dice(from_b64(bloom), from_b64(theirs.linkage.bloom_filters[name])) < 0.5


def test_welsh_variants_and_nicknames_share_the_canonical_forename_token(
    pseudonymiser: Pseudonymiser,
) -> None:
    dafydd = split_child(pseudonymiser, forename="Dafydd").linkage.hmac_tokens
    dave = split_child(pseudonymiser, forename="Dave").linkage.hmac_tokens
    assert dafydd["forename"] != dave["forename"]
    assert dafydd["forename_canonical"] == dave["forename_canonical"]


def test_a_sam_shares_the_canonical_token_of_a_samuel_or_a_samantha_by_the_records_sex(
    pseudonymiser: Pseudonymiser,
) -> None:
    def canonical(forename: str, sex: object) -> str:
        split = split_child(pseudonymiser, forename=forename, middle_names="", sex=sex)
        return split.linkage.hmac_tokens["forename_canonical"]

    assert canonical("Sam", 1) == canonical("Samuel", 1) != canonical("Samantha", 2)
    assert canonical("Sam", 2) == canonical("Samantha", 2)
    # The same name split for a boy and then a girl: the part cache keeps them apart.
    assert canonical("Sam", 1) != canonical("Sam", 2)
    assert canonical("Sam", None) not in {canonical("Samuel", 1), canonical("Samantha", 2)}


def test_accented_and_plain_spellings_give_the_same_tokens(pseudonymiser: Pseudonymiser) -> None:
    accented = split_child(pseudonymiser, forename="Siôn").linkage.hmac_tokens
    plain = split_child(pseudonymiser, forename="SION").linkage.hmac_tokens
    assert accented["forename"] == plain["forename"]


def test_hyphenated_and_spaced_double_barrelled_surnames_match(
    pseudonymiser: Pseudonymiser,
) -> None:
    hyphen = split_child(pseudonymiser, surname="Smith-Jones").linkage
    spaced = split_child(pseudonymiser, surname="Smith Jones").linkage
    jones = split_child(pseudonymiser, surname="Jones").linkage
    assert hyphen.hmac_tokens["surname"] == spaced.hmac_tokens["surname"]
    assert jones.hmac_tokens["surname"] in hyphen.token_sets["surnames"]


def test_a_middle_name_used_as_the_given_name_is_found_among_the_given_names(
    pseudonymiser: Pseudonymiser,
) -> None:
    formal = split_child(pseudonymiser, forename="William", middle_names="Huw").linkage
    known_as = split_child(pseudonymiser, forename="Huw", middle_names=None).linkage
    assert known_as.hmac_tokens["forename"] in formal.token_sets["given_names"]
    assert known_as.hmac_tokens["forename"] in formal.token_sets["middle_names"]


def test_a_maiden_surname_compares_equal_to_a_surname(pseudonymiser: Pseudonymiser) -> None:
    married = split_adult(pseudonymiser, surname="Evans", previous_surnames=["Pritchard"])
    maiden = split_adult(pseudonymiser, surname="Pritchard", previous_surnames=[])
    tokens = married.linkage.token_sets
    assert maiden.linkage.hmac_tokens["surname"] in tokens["previous_surnames"]
    assert maiden.linkage.hmac_tokens["surname"] in tokens["surnames"]


def test_a_day_month_swap_is_encoded_to_match_the_swapped_date(
    pseudonymiser: Pseudonymiser,
) -> None:
    keyed = split_child(pseudonymiser, date_of_birth="2016-03-04").linkage.hmac_tokens
    swapped = split_child(pseudonymiser, date_of_birth="2016-04-03").linkage.hmac_tokens
    assert keyed["dob_swapped"] == swapped["dob_full"]
    assert (
        "dob_swapped"
        not in split_child(pseudonymiser, date_of_birth="2016-03-24").linkage.hmac_tokens
    )


def test_a_forename_surname_swap_keeps_a_high_full_name_similarity(
    pseudonymiser: Pseudonymiser,
) -> None:
    straight = split_child(pseudonymiser, forename="Rhys", surname="Evans", middle_names=None)
    swapped = split_child(pseudonymiser, forename="Evans", surname="Rhys", middle_names=None)
    a = from_b64(straight.linkage.bloom_filters["full_name"])
    b = from_b64(swapped.linkage.bloom_filters["full_name"])
    assert dice(a, b) == 1.0


def test_placeholder_forenames_are_flagged_and_not_encoded(pseudonymiser: Pseudonymiser) -> None:
    baby = split_child(pseudonymiser, forename="Baby of Catrin Evans", middle_names=None)
    linkage = baby.linkage
    assert {QualityFlag.FORENAME_PLACEHOLDER, QualityFlag.NAME_PLACEHOLDER} <= linkage.flags
    assert not {"forename", "forename_canonical", "forename_phonetic"} & set(linkage.hmac_tokens)
    assert "forename" not in linkage.bloom_filters
    assert "given_names" not in linkage.token_sets
    assert linkage.hmac_tokens["surname"] == pseudonymiser.token("surname", "evans")
    assert QualityFlag.NAME_PLACEHOLDER in baby.flags


def test_placeholder_dates_of_birth_are_flagged_but_still_encoded(
    pseudonymiser: Pseudonymiser,
) -> None:
    result = split_child(pseudonymiser, date_of_birth="01/01/2016")
    assert QualityFlag.DATE_OF_BIRTH_PLACEHOLDER in result.flags
    assert result.flags == result.linkage.flags  # both halves publish the same flags
    assert result.linkage.hmac_tokens["dob_full"] == pseudonymiser.token("dob_full", "2016-01-01")
    assert result.content["week_of_birth"] == "2015-12-28"


def test_nhs_numbers_failing_the_check_digit_are_flagged(pseudonymiser: Pseudonymiser) -> None:
    invalid = split_child(pseudonymiser, nhs_number="9434765918").linkage
    assert QualityFlag.NHS_NUMBER_INVALID in invalid.flags
    assert "nhs" in invalid.hmac_tokens
    missing = split_child(pseudonymiser, nhs_number=None).linkage
    assert QualityFlag.NHS_NUMBER_MISSING in missing.flags
    assert QualityFlag.NHS_NUMBER_INVALID not in missing.flags
    assert "nhs" not in missing.hmac_tokens
    valid = split_child(pseudonymiser).linkage
    assert not {QualityFlag.NHS_NUMBER_INVALID, QualityFlag.NHS_NUMBER_MISSING} & valid.flags


def test_postcodes_missing_from_the_directory_are_flagged_and_still_tokenised(
    pseudonymiser: Pseudonymiser,
) -> None:
    result = split_child(
        pseudonymiser, address={"line_1": "9 Nowhere Lane", "postcode": "LL57 9ZZ"}
    )
    assert QualityFlag.POSTCODE_NOT_FOUND in result.flags
    assert result.content["lsoa"] is None
    assert "postcode_unit" in result.linkage.hmac_tokens
    invalid = split_child(pseudonymiser, address={"line_1": "9 Nowhere Lane", "postcode": "N/A"})
    assert QualityFlag.POSTCODE_INVALID in invalid.flags
    assert invalid.content["area_quality"] == "invalid"
    assert "postcode_unit" not in invalid.linkage.hmac_tokens


def test_unrecognised_sex_values_become_unknown_with_a_flag(pseudonymiser: Pseudonymiser) -> None:
    result = split_child(pseudonymiser, sex="purple")
    assert result.content["sex"] == 9
    assert QualityFlag.SEX_UNKNOWN in result.flags
    assert "sex" not in result.linkage.hmac_tokens
    assert split_child(pseudonymiser, sex="F").content["sex"] == 2


def test_the_spine_address_history_gives_per_address_encodings_and_residences(
    pseudonymiser: Pseudonymiser,
) -> None:
    result = split_spine(pseudonymiser)
    residences = result.content["residences"]
    assert [(r["from"], r["to"], r["local_authority"]) for r in residences] == [
        ("2008-09", "2014-02", "W06000011"),
        ("2014-03", None, "W06000015"),
    ]
    assert all(r["lsoa"] and r["area_quality"] == "exact" for r in residences)
    addresses = result.linkage.addresses
    assert [a.hmac_tokens["postcode_unit"] for a in addresses] == [
        pseudonymiser.token("postcode_unit", "SA1 3RL"),
        pseudonymiser.token("postcode_unit", "CF10 4PS"),
    ]
    assert all(a.bloom_filter and a.hmac_tokens["postcode_sector"] for a in addresses)
    # the current address of a Cafcass record compares with the matching spine address
    child = split_adult(pseudonymiser).linkage
    assert dice(from_b64(child.bloom_filters["address"]), from_b64(addresses[1].bloom_filter)) > 0.9
    assert "address" not in result.content and "address_history" not in result.content


def test_a_date_of_death_is_coarsened_to_the_month(pseudonymiser: Pseudonymiser) -> None:
    result = split_spine(pseudonymiser, date_of_death="2020-04-17")
    assert result.content["month_of_death"] == "2020-04"


def test_fields_without_a_role_are_refused_by_name_without_their_values(
    pseudonymiser: Pseudonymiser,
) -> None:
    with pytest.raises(UnclassifiedFieldError) as raised:
        pseudonymiser.split(
            records.child(mothers_name="Quillfeather"),
            source="cafcass-cymru",
            record_kind="child",
            roles=records.CHILD_ROLES,
        )
    assert raised.value.fields == ("mothers_name",)
    assert "Quillfeather" not in str(raised.value)


def test_fields_without_a_role_can_be_dropped_with_a_note_instead(
    pseudonymiser: Pseudonymiser,
) -> None:
    result = pseudonymiser.split(
        records.child(mothers_name="Quillfeather"),
        source="cafcass-cymru",
        record_kind="child",
        roles=records.CHILD_ROLES,
        unknown="drop",
    )
    assert result.content["quality"]["unclassified_fields_dropped"] == ["mothers_name"]
    assert "Quillfeather" not in repr(result)


@pytest.mark.parametrize(
    "roles",
    [
        {"forename": "forename"},  # no record id
        {"a": "record_id", "b": "record_id"},
        {"id": "record_id", "a": "surname", "b": "surname"},
        {"id": "record_id", "a": "ref:"},
        {"id": "record_id", "a": "ref"},
        {"id": "record_id", "a": "favourite colour"},
        {"id": "record_id", "a.b": "ref:case"},  # nested under a field that is not content
        {"id": "record_id", "a": "content", "a.b": "surname"},  # only refs and drops nest
    ],
)
def test_malformed_role_mappings_are_refused(
    pseudonymiser: Pseudonymiser, roles: dict[str, str]
) -> None:
    with pytest.raises(RoleError):
        pseudonymiser.split({"id": "1"}, source="s", record_kind="k", roles=roles)


def test_an_empty_record_id_is_refused_without_echoing_the_record(
    pseudonymiser: Pseudonymiser,
) -> None:
    with pytest.raises(ValueError) as raised:
        split_child(pseudonymiser, record_id="  ")
    assert "Dafydd" not in str(raised.value)


def test_missing_person_fields_are_flagged_not_fatal(pseudonymiser: Pseudonymiser) -> None:
    result = split_child(
        pseudonymiser,
        forename=None,
        middle_names=None,
        surname=None,
        date_of_birth=None,
        nhs_number=None,
        address=None,
        sex=None,
    )
    assert {
        QualityFlag.FORENAME_MISSING,
        QualityFlag.SURNAME_MISSING,
        QualityFlag.DATE_OF_BIRTH_MISSING,
        QualityFlag.POSTCODE_MISSING,
        QualityFlag.NHS_NUMBER_MISSING,
    } <= result.flags
    assert result.linkage.hmac_tokens == {} and result.linkage.bloom_filters == {}
    assert result.content["week_of_birth"] is None and result.content["sex"] == 9
    assert result.is_person


def test_a_garbled_date_of_birth_is_flagged_invalid(pseudonymiser: Pseudonymiser) -> None:
    result = split_child(pseudonymiser, date_of_birth="31/02/2016")
    assert QualityFlag.DATE_OF_BIRTH_INVALID in result.flags
    assert "dob_full" not in result.linkage.hmac_tokens


def test_python_mode_values_split_like_their_json_forms(pseudonymiser: Pseudonymiser) -> None:
    from datetime import date
    from enum import IntEnum

    class Sex(IntEnum):
        FEMALE = 2

    as_json = split_spine(pseudonymiser)
    history = records.spine()["address_history"]
    as_python = split_spine(
        pseudonymiser,
        date_of_birth=date(1990, 11, 23),
        sex=Sex.FEMALE,
        previous_surnames=("Pritchard",),
        address_history=tuple(
            {**entry, "from_date": date.fromisoformat(entry["from_date"]),
             "to_date": entry["to_date"] and date.fromisoformat(entry["to_date"])}
            for entry in history
        ),
    )  # fmt: skip
    assert as_python == as_json


def test_a_spine_person_without_a_current_address_field_uses_the_open_history_period(
    pseudonymiser: Pseudonymiser,
) -> None:
    result = split_spine(pseudonymiser)
    assert result.content["local_authority"] == "W06000015"
    assert result.content["area_quality"] == "exact"
    tokens = result.linkage.hmac_tokens
    assert tokens["postcode_unit"] == pseudonymiser.token("postcode_unit", "CF10 4PS")
    assert result.linkage.bloom_filters["address"] == result.linkage.addresses[1].bloom_filter
    assert QualityFlag.POSTCODE_MISSING not in result.flags


def test_short_forenames_one_typo_apart_share_an_edit_token_and_others_do_not(
    pseudonymiser: Pseudonymiser,
) -> None:
    def edits(forename: str) -> set[str]:
        split = split_child(pseudonymiser, forename=forename, middle_names=None)
        return set(split.linkage.token_sets.get("forename_edits", ()))

    mia = edits("Mia")
    # One letter replaced, added or dropped, or two neighbours swapped.
    for typo in ("Mva", "Mi", "Mira", "Ima", "MIA"):
        assert mia & edits(typo), typo
    # Two edits apart (dropping a letter from each would give both "ma"), or far apart.
    for other in ("Max", "Evie", "Ava"):
        assert not mia & edits(other), other
    assert edits("Mali") & edits("Amli")
    # Long names have none: one typo there still leaves a bigram Dice of 0.7 or more.
    assert edits("Stephanie") == set()
    # Keyed like every token: another key, other tokens.
    other_key = Pseudonymiser(KeyRing.single(fixed_key("other")), OnsPostcodeLookup([]))
    assert not mia & set(
        split_child(other_key, forename="Mia", middle_names=None).linkage.token_sets[
            "forename_edits"
        ]
    )
