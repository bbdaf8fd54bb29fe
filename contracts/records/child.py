"""A child who is the subject of a case: identifiers for linkage, content for research."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict, Field

from contracts.identifiers import IdentifierKind, identifier
from contracts.records.common import Address, CaseScopedRecord, PersonName, RecordType, SexCode
from contracts.records.dates import BirthDate
from contracts.records.nhs import NhsNumber

__all__ = ["ChildRecord", "Ethnicity", "LivingSituation"]


class Ethnicity(StrEnum):
    """The ONS 2021 Census ethnic groups (19 categories), plus not stated and unknown."""

    ASIAN_BANGLADESHI = "asian-bangladeshi"
    ASIAN_CHINESE = "asian-chinese"
    ASIAN_INDIAN = "asian-indian"
    ASIAN_PAKISTANI = "asian-pakistani"
    ASIAN_OTHER = "asian-other"
    BLACK_AFRICAN = "black-african"
    BLACK_CARIBBEAN = "black-caribbean"
    BLACK_OTHER = "black-other"
    MIXED_WHITE_AND_ASIAN = "mixed-white-and-asian"
    MIXED_WHITE_AND_BLACK_AFRICAN = "mixed-white-and-black-african"
    MIXED_WHITE_AND_BLACK_CARIBBEAN = "mixed-white-and-black-caribbean"
    MIXED_OTHER = "mixed-other"
    WHITE_BRITISH = "white-british"
    """English, Welsh, Scottish, Northern Irish or British."""
    WHITE_IRISH = "white-irish"
    WHITE_GYPSY_OR_IRISH_TRAVELLER = "white-gypsy-or-irish-traveller"
    WHITE_ROMA = "white-roma"
    WHITE_OTHER = "white-other"
    OTHER_ARAB = "other-arab"
    OTHER_ANY = "other-any"
    NOT_STATED = "not-stated"
    UNKNOWN = "unknown"


class LivingSituation(StrEnum):
    """Where the child lives when the case starts."""

    WITH_BOTH_PARENTS = "with-both-parents"
    WITH_MOTHER = "with-mother"
    WITH_FATHER = "with-father"
    WITH_RELATIVE_OR_FRIEND = "with-relative-or-friend"
    FOSTER_CARE = "foster-care"
    RESIDENTIAL_CARE = "residential-care"
    MOTHER_AND_BABY_PLACEMENT = "mother-and-baby-placement"
    HOSPITAL = "hospital"
    OTHER = "other"
    UNKNOWN = "unknown"


class ChildRecord(CaseScopedRecord):
    """A subject child; names and date of birth may be missing (unnamed newborns)."""

    record_type: ClassVar[RecordType] = RecordType.CHILD
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cafcass-cymru",
                    "record_id": "CH-2019-000123",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "case_id": "CASE-2019-004567",
                    "forename": "Cerys",
                    "middle_names": "Angharad",
                    "surname": "Jones",
                    "date_of_birth": "2018-11-20",
                    "sex": 2,
                    "nhs_number": "943 476 5919",
                    "address": {"line_1": "1 Heol y Frenhines", "postcode": "cf10 1aa"},
                    "ethnicity": "white-british",
                    "disability": False,
                    "living_situation": "with-mother",
                    "additional_needs": False,
                },
                {
                    "source": "cafcass-england",
                    "record_id": "CH-2017-000009",
                    "record_version": 2,
                    "extracted_at": "2024-05-01T09:30:00+01:00",
                    "case_id": "CASE-2017-000001",
                    "forename": "Baby",
                    "surname": "Smith",
                    "sex": "unknown",
                },
            ]
        }
    )

    forename: PersonName | None = Field(
        default=None,
        description="Given name as recorded ('Baby' for unnamed newborns).",
        examples=["Cerys"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    middle_names: PersonName | None = Field(
        default=None,
        description="Middle name(s), space separated.",
        examples=["Angharad"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    surname: PersonName | None = Field(
        default=None,
        description="Family name as recorded.",
        examples=["Jones"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    date_of_birth: BirthDate | None = Field(
        default=None,
        description="Date of birth (YYYY-MM-DD); not in the future.",
        examples=["2018-11-20"],
        json_schema_extra=identifier(IdentifierKind.DATE_OF_BIRTH),
    )
    sex: SexCode | None = Field(
        default=None,
        description="SAIL GENDER_CD: 1, 2, 8 or 9 (words accepted, held as the code).",
        examples=[2],
    )
    nhs_number: NhsNumber | None = Field(
        default=None,
        description="NHS number, 10 digits, often missing; bad check digits are flagged.",
        examples=["9434765919"],
        json_schema_extra=identifier(IdentifierKind.NHS_NUMBER),
    )
    address: Address | None = Field(
        default=None,
        description="Where the child lives.",
        examples=[{"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"}],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    ethnicity: Ethnicity | None = Field(
        default=None, description="ONS 2021 ethnic group code.", examples=["white-british"]
    )
    disability: bool | None = Field(
        default=None, description="Whether the child has a recorded disability.", examples=[False]
    )
    living_situation: LivingSituation | None = Field(
        default=None,
        description="Where the child lives when the case starts.",
        examples=["with-mother"],
    )
    additional_needs: bool | None = Field(
        default=None,
        description="Whether additional needs are recorded (no free text: it carries identifiers).",
        examples=[False],
    )
