"""An adult party to a case (mostly birth parents): identifiers, role and representation."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict, Field

from contracts.identifiers import IdentifierKind, identifier
from contracts.records.common import Address, CaseScopedRecord, PersonName, RecordType, SexCode
from contracts.records.dates import BirthDate
from contracts.records.nhs import NhsNumber
from contracts.records.relationship import Relationship

__all__ = ["AdultPartyRecord", "PartyRole"]


class PartyRole(StrEnum):
    """The adult's part in the proceedings."""

    APPLICANT = "applicant"
    RESPONDENT = "respondent"
    INTERVENOR = "intervenor"
    OTHER = "other"


class AdultPartyRecord(CaseScopedRecord):
    """An adult party; previous surnames matter because maiden and married names break links."""

    record_type: ClassVar[RecordType] = RecordType.ADULT_PARTY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cafcass-cymru",
                    "record_id": "AD-2019-000456",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "case_id": "CASE-2019-004567",
                    "forename": "Sian",
                    "surname": "Jones",
                    "previous_surnames": ["Evans"],
                    "date_of_birth": "1996-04-02",
                    "sex": "female",
                    "address": {"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"},
                    "nhs_number": "4010232137",
                    "role": "respondent",
                    "relationship_to_child": "mother",
                    "parental_responsibility": True,
                    "legal_representation": True,
                    "litigation_issues": False,
                }
            ]
        }
    )

    forename: PersonName | None = Field(
        default=None,
        description="Given name as recorded.",
        examples=["Sian"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    surname: PersonName | None = Field(
        default=None,
        description="Current family name.",
        examples=["Jones"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    previous_surnames: tuple[PersonName, ...] = Field(
        default=(),
        description="Earlier family names (maiden, previous married).",
        examples=[["Evans"]],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    date_of_birth: BirthDate | None = Field(
        default=None,
        description="Date of birth (YYYY-MM-DD); not in the future.",
        examples=["1996-04-02"],
        json_schema_extra=identifier(IdentifierKind.DATE_OF_BIRTH),
    )
    sex: SexCode | None = Field(
        default=None,
        description="SAIL GENDER_CD: 1, 2, 8 or 9 (words accepted, held as the code).",
        examples=[2],
    )
    address: Address | None = Field(
        default=None,
        description="The adult's address, if known.",
        examples=[{"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"}],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    nhs_number: NhsNumber | None = Field(
        default=None,
        description="NHS number, 10 digits, if known.",
        examples=["4010232137"],
        json_schema_extra=identifier(IdentifierKind.NHS_NUMBER),
    )
    role: PartyRole = Field(
        description="The adult's part in the proceedings.", examples=["respondent"]
    )
    relationship_to_child: Relationship | None = Field(
        default=None,
        description="Relationship to the subject child(ren) when the source keeps one per party; "
        "party-child relationship records are authoritative where they differ.",
        examples=["mother"],
    )
    parental_responsibility: bool | None = Field(
        default=None, description="Whether the adult has parental responsibility.", examples=[True]
    )
    legal_representation: bool | None = Field(
        default=None, description="Whether the adult has a solicitor.", examples=[True]
    )
    litigation_issues: bool | None = Field(
        default=None,
        description="Whether litigation capacity issues are recorded (a litigation friend).",
        examples=[False],
    )
