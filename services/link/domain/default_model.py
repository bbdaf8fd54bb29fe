"""The default linkage model (untrained): comparisons, blocking and training rules.

Key names are those of pseudonymise's linkage keys (tokens, token lists, Bloom encodings);
flags are the contract's ``QualityFlag`` s. m values here are starting points for EM; u values
are replaced by ``estimate_u``.
"""

from __future__ import annotations

from typing import Any

from contracts.events import QualityFlag
from services.link.domain.model import (
    BlockingRule,
    Comparison,
    Guard,
    Level,
    LinkageModel,
    Thresholds,
)

__all__ = ["default_model"]


def _eq(*keys: str) -> dict[str, Any]:
    return {"eq": keys[0]} if len(keys) == 1 else {"eq": list(keys)}


def _all(*preds: dict[str, Any]) -> dict[str, Any]:
    return {"all": list(preds)}


def _dice(key: str, threshold: float) -> dict[str, Any]:
    return {"dice": key, "min": threshold}


_NHS_CONTRADICTED: tuple[dict[str, tuple[str, ...]], ...] = (
    # Two of the person's own details contradict it (another birthday, another forename or
    # none, the other sex) and the birthday does not corroborate it...
    {"nhs": ("exact",), "dob": ("else",), "forename": ("else", "null")},
    {"nhs": ("exact",), "dob": ("else",), "sex": ("else",)},
    {"nhs": ("exact",), "dob": ("null",), "forename": ("else", "null"), "sex": ("else",)},
    # ...or nothing personal corroborates it: no birthday and no name ("Baby").
    {"nhs": ("exact",), "dob": ("null",), "forename": ("null",)},
)
"""Levels that, together, say an agreeing NHS number may be someone else's: a baby recorded
under its mother's number. The guards and the deterministic step use the same sets."""


def default_model(version: str = "fjo-link-default-0") -> LinkageModel:
    """Comparisons for family-court records against a population spine."""
    forename = Comparison(
        name="forename",
        needs=("forename",),
        null_if_flag=(QualityFlag.FORENAME_PLACEHOLDER,),
        levels=(
            Level("exact", _eq("forename"), m=0.80, tf="forename"),
            Level(
                "another given name",
                {"in": ["forename", "given_names"]},
                m=0.04,
            ),
            Level("nickname or Welsh variant", _eq("forename_canonical"), m=0.05),
            Level("swapped with the surname", _eq("surname_as_forename", "forename"), m=0.02),
            Level("Dice >= 0.9", _dice("forename", 0.9), m=0.02),
            Level("phonetic", _eq("forename_phonetic"), m=0.02),
            Level("Dice >= 0.7", _dice("forename", 0.7), m=0.02),
            Level("full name similar (swap)", _dice("full_name", 0.85), m=0.01),
            Level("Dice >= 0.55", _dice("forename", 0.55), m=0.01),
            # A short name one typo away, where Dice sees nothing (Mia/Mva, Mali/Amli).
            Level("one edit (short name)", {"overlap": "forename_edits"}, m=0.01),
        ),
        else_m=0.04,
    )
    surname = Comparison(
        name="surname",
        needs=("surname",),
        null_if_flag=(QualityFlag.SURNAME_PLACEHOLDER,),
        levels=(
            Level("exact", _eq("surname"), m=0.85, tf="surname"),
            Level(
                "previous surname",
                {"any": [{"in": ["surname", "previous_surnames"]}, {"overlap": "surnames"}]},
                m=0.04,
            ),
            Level("swapped with the forename", _eq("forename_as_surname", "surname"), m=0.02),
            Level("Dice >= 0.9", _dice("surname", 0.9), m=0.02),
            Level("phonetic", _eq("surname_phonetic"), m=0.02),
            Level("Dice >= 0.7", _dice("surname", 0.7), m=0.02),
            Level("full name similar (swap)", _dice("full_name", 0.85), m=0.01),
        ),
        else_m=0.04,
    )
    dob = Comparison(
        name="dob",
        needs=("dob_full",),
        levels=(
            Level(
                "exact",
                _all(_eq("dob_full"), {"not": {"flag": QualityFlag.DATE_OF_BIRTH_PLACEHOLDER}}),
                m=0.88,
            ),
            Level(
                "placeholder 01/01, same year",
                _all({"flag": QualityFlag.DATE_OF_BIRTH_PLACEHOLDER}, _eq("dob_year")),
                m=0.02,
            ),
            Level("day and month swapped", _eq("dob_swapped", "dob_full"), m=0.02),
            Level("year and month", _all(_eq("dob_year"), _eq("dob_month")), m=0.03),
            Level(
                "two of three parts",
                {"all": [_eq("dob_day"), {"any": [_eq("dob_year"), _eq("dob_month")]}]},
                m=0.02,
            ),
            Level("year only", _eq("dob_year"), m=0.01),
        ),
        else_m=0.02,
    )
    sex = Comparison(
        name="sex",
        needs=("sex",),
        levels=(Level("exact", _eq("sex"), m=0.98),),
        else_m=0.02,
    )
    household = Comparison(
        name="household",
        needs_any=("postcode_unit", "address"),
        levels=(
            Level(
                "postcode unit and address",
                _all(_eq("postcode_unit"), _dice("address", 0.8)),
                m=0.35,
            ),
            Level("postcode unit", _eq("postcode_unit"), m=0.35),
            Level(
                "address, postcode typo",
                _all(_dice("address", 0.8), _eq("postcode_district")),
                m=0.02,
            ),
            Level(
                "a previous postcode", {"in": ["postcode_unit", "previous_postcode_units"]}, m=0.05
            ),
            Level("address, no postcode agreement", _dice("address", 0.9), m=0.03),
            Level("postcode sector", _eq("postcode_sector"), m=0.04),
            Level("postcode district", _eq("postcode_district"), m=0.04),
            Level("address Dice >= 0.7", _dice("address", 0.7), m=0.03),
        ),
        else_m=0.15,
        context_levels=(0, 1, 2, 3, 4),
    )
    nhs = Comparison(
        name="nhs",
        needs=("nhs",),
        levels=(Level("exact", _eq("nhs"), m=0.97),),
        else_m=0.03,
    )
    blocking = (
        BlockingRule("nhs", ("nhs",)),
        BlockingRule("dob+surname_phonetic", ("dob_full", "surname_phonetic")),
        BlockingRule("dob+forename_canonical", ("dob_full", "forename_canonical")),
        BlockingRule(
            "swapped_dob+surname_phonetic",
            ("dob_swapped", "surname_phonetic"),
            ("dob_full", "surname_phonetic"),
        ),
        BlockingRule(
            "swapped_dob+forename_canonical",
            ("dob_swapped", "forename_canonical"),
            ("dob_full", "forename_canonical"),
        ),
        BlockingRule(
            "surname+forename_canonical+dob_year", ("surname", "forename_canonical", "dob_year")
        ),
        BlockingRule(
            "surname+forename_canonical+dob_month",
            ("surname", "forename_canonical", "dob_month"),
            max_block=200,
        ),
        BlockingRule(
            "surname+forename_canonical+postcode_district",
            ("surname", "forename_canonical", "postcode_district"),
            max_block=200,
        ),
        BlockingRule(
            "uncommon surname+forename_canonical", ("surname", "forename_canonical"), max_block=40
        ),
        BlockingRule(
            "previous_surname+forename_canonical+dob_year",
            ("surname", "forename_canonical", "dob_year"),
            ("previous_surnames", "forename_canonical", "dob_year"),
        ),
        BlockingRule(
            "swapped names+dob", ("forename_as_surname", "dob_full"), ("surname", "dob_full")
        ),
        BlockingRule(
            "swapped names+postcode",
            ("forename_as_surname", "postcode_unit"),
            ("surname", "postcode_unit"),
            max_block=60,
        ),
        BlockingRule("postcode+dob_year", ("postcode_unit", "dob_year")),
        BlockingRule("postcode+forename_canonical", ("postcode_unit", "forename_canonical")),
        BlockingRule("dob+postcode_district", ("dob_full", "postcode_district")),
        BlockingRule("any_surname+dob", ("surname", "dob_full"), ("surnames", "dob_full")),
        BlockingRule("postcode+surname", ("postcode_unit", "surname"), max_block=60),
        BlockingRule(
            "surname_phonetic+forename_phonetic+dob_year",
            ("surname_phonetic", "forename_phonetic", "dob_year"),
            max_block=400,
        ),
        *(
            BlockingRule(
                f"address LSH band {i}",
                (),
                lsh_bloom="address",
                lsh_bits=30,
                lsh_seed=100 + i,
                max_block=25,
            )
            for i in range(4)
        ),
        *(
            BlockingRule(
                f"full name LSH band {i}",
                (),
                lsh_bloom="full_name",
                lsh_bits=30,
                lsh_seed=200 + i,
                max_block=25,
            )
            for i in range(4)
        ),
    )
    training = (
        BlockingRule("dob", ("dob_full",), max_block=500),
        BlockingRule(
            "surname+forename_canonical", ("surname", "forename_canonical"), max_block=200
        ),
    )
    return LinkageModel(
        version=version,
        comparisons=(forename, surname, dob, sex, household, nhs),
        blocking_rules=blocking,
        training_rules=training,
        thresholds=Thresholds(accept=0.9, review=0.5, margin_bits=3.0),
        guards=(
            # Same household, different forename: a sibling or twin until reviewed. A short
            # name one letter away is not "different" here: typos (Mva for Mia) far outnumber
            # twins named Mia and Tia, and a co-twin on the spine competes for the record
            # (docs/linkage.md, "The twin guard, measured").
            Guard({"forename": ("else",), "dob": ("exact",)}, in_household=True, cap_log2_odds=0.0),
            # The NHS number agrees but the person's own details do not: a baby under its
            # mother's number until reviewed.
            *(Guard(levels, in_household=False, cap_log2_odds=0.0) for levels in _NHS_CONTRADICTED),
        ),
        expected_link_rate=0.8,
        notes={
            "household_key": "postcode_unit",
            "deterministic": {
                "nhs_key": "nhs",
                "nhs_refused_if_flags": [QualityFlag.NHS_NUMBER_INVALID],
                "nhs_contradicted_by_else": [
                    {name: list(labels) for name, labels in levels.items() if name != "nhs"}
                    for levels in _NHS_CONTRADICTED
                ],
                "exact_keys": ["forename", "surname", "dob_full", "sex", "postcode_unit"],
                "forename_key": "forename",
                "forename_variant": {"any": [_eq("forename_canonical"), _dice("forename", 0.9)]},
                "exact_not_if_flags": [
                    QualityFlag.DATE_OF_BIRTH_PLACEHOLDER,
                    QualityFlag.FORENAME_PLACEHOLDER,
                ],
                "any_of_required": ["dob_full", "surname", "nhs"],
            },
        },
    )
