"""A person on the population spine (Welsh Demographic Service) with address history."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.identifiers import IdentifierKind, identifier
from contracts.records.common import (
    Address,
    PartnerRecord,
    PersonName,
    RecordType,
    SexCode,
    SourceAgency,
)
from contracts.records.dates import BirthDate, IsoDate, PastDate
from contracts.records.nhs import NhsNumber

__all__ = ["AddressPeriod", "SpinePersonRecord"]


class AddressPeriod(ContractModel):
    """An address and the dates the person lived there; families move, so links need the history."""

    address: Address = Field(
        description="The address.",
        examples=[{"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"}],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    from_date: IsoDate = Field(description="First day at this address.", examples=["2015-06-01"])
    to_date: IsoDate | None = Field(
        default=None,
        description="Last day at this address; empty while current.",
        examples=["2019-08-31"],
    )

    @field_validator("to_date")
    @classmethod
    def _ends_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("from_date")
        if value is not None and isinstance(start, date) and value < start:
            raise PydanticCustomError("date_order", "to_date must not be before from_date")
        return value


class SpinePersonRecord(PartnerRecord):
    """A spine person; ``record_id`` is the spine's person id, so every source is handled alike."""

    record_type: ClassVar[RecordType] = RecordType.SPINE_PERSON
    allowed_sources: ClassVar[frozenset[SourceAgency]] = frozenset({SourceAgency.WDS})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "wds",
                    "record_id": "WDS-0001234567",
                    "record_version": 3,
                    "extracted_at": "2024-05-01T02:00:00Z",
                    "forename": "Sian",
                    "middle_names": "Mair",
                    "surname": "Jones",
                    "previous_surnames": ["Evans"],
                    "date_of_birth": "1996-04-02",
                    "sex": 2,
                    "nhs_number": "4010232137",
                    "address_history": [
                        {
                            "address": {"line_1": "3 Stryd Fawr", "postcode": "SA1 1AA"},
                            "from_date": "1996-04-02",
                            "to_date": "2015-05-31",
                        },
                        {
                            "address": {"line_1": "1 Heol y Frenhines", "postcode": "CF10 1AA"},
                            "from_date": "2015-06-01",
                        },
                    ],
                }
            ]
        }
    )

    forename: PersonName = Field(
        description="Given name.",
        examples=["Sian"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    middle_names: PersonName | None = Field(
        default=None,
        description="Middle name(s), space separated.",
        examples=["Mair"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    surname: PersonName = Field(
        description="Current family name.",
        examples=["Jones"],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    previous_surnames: tuple[PersonName, ...] = Field(
        default=(),
        description="Earlier family names.",
        examples=[["Evans"]],
        json_schema_extra=identifier(IdentifierKind.NAME),
    )
    date_of_birth: BirthDate = Field(
        description="Date of birth (YYYY-MM-DD).",
        examples=["1996-04-02"],
        json_schema_extra=identifier(IdentifierKind.DATE_OF_BIRTH),
    )
    sex: SexCode = Field(
        description="SAIL GENDER_CD: 1, 2, 8 or 9 (words accepted, held as the code).", examples=[2]
    )
    nhs_number: NhsNumber = Field(
        description="NHS number, 10 digits.",
        examples=["4010232137"],
        json_schema_extra=identifier(IdentifierKind.NHS_NUMBER),
    )
    date_of_death: PastDate | None = Field(
        default=None,
        description="Date of death, if any; not before the date of birth.",
        examples=["2023-01-15"],
        json_schema_extra=identifier(IdentifierKind.DATE_OF_DEATH),
    )
    address_history: tuple[AddressPeriod, ...] = Field(
        default=(),
        description="Addresses with from/to dates, oldest first.",
        examples=[[{"address": {"postcode": "CF10 1AA"}, "from_date": "2015-06-01"}]],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )

    @field_validator("date_of_death")
    @classmethod
    def _death_after_birth(cls, value: date | None, info: ValidationInfo) -> date | None:
        born = info.data.get("date_of_birth")
        if value is not None and isinstance(born, date) and value < born:
            raise PydanticCustomError(
                "date_order", "date_of_death must not be before date_of_birth"
            )
        return value
