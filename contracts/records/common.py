"""What partner records share: agencies, record kinds, sex codes, names, addresses, metadata."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.identifiers import IdentifierKind, identifier
from contracts.records.dates import UtcDateTime
from contracts.records.postcode import Postcode

__all__ = [
    "CAFCASS_SOURCES",
    "MAX_RECORD_VERSION",
    "PERSON_RECORD_TYPES",
    "Address",
    "AddressLine",
    "CaseScopedRecord",
    "CourtCode",
    "LocalAuthorityCode",
    "PartnerRecord",
    "PersonName",
    "RecordId",
    "RecordType",
    "RecordVersion",
    "Sex",
    "SexCode",
    "SourceAgency",
]


class SourceAgency(StrEnum):
    """Who sent a record: the two Cafcass services, and the spine's owner.

    The spine is the Welsh Demographic Service (``wds``), as in SAIL Databank: everyone ever
    registered with a Welsh GP, with address history.
    """

    CAFCASS_ENGLAND = "cafcass-england"
    CAFCASS_CYMRU = "cafcass-cymru"
    WDS = "wds"


CAFCASS_SOURCES = frozenset({SourceAgency.CAFCASS_ENGLAND, SourceAgency.CAFCASS_CYMRU})


class RecordType(StrEnum):
    """The kinds of partner record; each has its own contract and ingest event."""

    CASE = "case"
    CHILD = "child"
    ADULT_PARTY = "adult-party"
    PARTY_CHILD_RELATIONSHIP = "party-child-relationship"
    HEARING = "hearing"
    SPINE_PERSON = "spine-person"


PERSON_RECORD_TYPES = frozenset({RecordType.CHILD, RecordType.ADULT_PARTY, RecordType.SPINE_PERSON})
"""Record kinds that describe a person, and so get linkage keys and a link result."""


class Sex(IntEnum):
    """SAIL's GENDER_CD: 1 male, 2 female, 8 not specified, 9 unknown."""

    MALE = 1
    FEMALE = 2
    NOT_SPECIFIED = 8
    UNKNOWN = 9


_SEX_WORDS: dict[str, Sex] = {
    "1": Sex.MALE,
    "m": Sex.MALE,
    "male": Sex.MALE,
    "2": Sex.FEMALE,
    "f": Sex.FEMALE,
    "female": Sex.FEMALE,
    "8": Sex.NOT_SPECIFIED,
    "not specified": Sex.NOT_SPECIFIED,
    "not-specified": Sex.NOT_SPECIFIED,
    "not_specified": Sex.NOT_SPECIFIED,
    "unspecified": Sex.NOT_SPECIFIED,
    "9": Sex.UNKNOWN,
    "u": Sex.UNKNOWN,
    "unknown": Sex.UNKNOWN,
    "not known": Sex.UNKNOWN,
}


def _sex(value: object) -> Sex:
    if isinstance(value, Sex):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in Sex._value2member_map_:
        return Sex(value)
    if isinstance(value, str):
        found = _SEX_WORDS.get(" ".join(value.lower().split()))
        if found is not None:
            return found
    raise PydanticCustomError(
        "sex_code", "sex must be 1, 2, 8 or 9, or male, female, not specified, unknown"
    )


SexCode = Annotated[Sex, BeforeValidator(_sex)]
"""``Sex`` given as a code (``1``, ``"2"``) or a word (``"female"``, ``"M"``), held as the code."""


def _name_characters(value: str) -> str:
    if any(ch.isdigit() or not ch.isprintable() or ch in "@<>" for ch in value):
        raise PydanticCustomError(
            "name_characters", "name must not contain digits, control characters or @ < >"
        )
    return value


PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_name_characters)
]
"""A forename, middle name(s) or surname as recorded (case and accents kept)."""

RecordId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
]
"""A partner's own id for a record: letters, digits and ``. _ : / -``, at most 64 characters."""

MAX_RECORD_VERSION = 2**31 - 1
"""The largest version every service can keep: link and access hold it in a 32-bit INTEGER
column (ingest in a BIGINT, which 2**63 overflowed and failed the whole delivery)."""


def _not_a_boolean(value: object) -> object:
    # Lax integers take true as 1: a version is a number, never a flag.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "version must be an integer, not true or false")
    return value


RecordVersion = Annotated[int, Field(ge=1, le=MAX_RECORD_VERSION), BeforeValidator(_not_a_boolean)]
"""A record's version at its source: 1 up to 2**31 - 1 (``"3"`` from CSV is 3; ``true`` is no
version)."""

LocalAuthorityCode = Annotated[str, StringConstraints(pattern=r"^(?:E0[6-9]|E10|W06)[0-9]{6}$")]
"""ONS (GSS) code of an English or Welsh local authority, e.g. ``W06000015`` (Cardiff)."""

CourtCode = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
"""A court or hearing venue as the partner codes it."""

AddressLine = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class Address(ContractModel):
    """A postal address as SAIL's File 1 holds it: up to five lines and a postcode."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"line_1": "1 Heol y Frenhines", "line_2": "Caerdydd", "postcode": "CF10 1AA"}
            ]
        }
    )

    line_1: AddressLine | None = Field(
        default=None,
        description="First address line (house and street).",
        examples=["1 Heol y Frenhines"],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    line_2: AddressLine | None = Field(
        default=None,
        description="Second address line.",
        examples=["Caerdydd"],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    line_3: AddressLine | None = Field(
        default=None,
        description="Third address line.",
        examples=["De Morgannwg"],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    line_4: AddressLine | None = Field(
        default=None,
        description="Fourth address line.",
        examples=["Cymru"],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    line_5: AddressLine | None = Field(
        default=None,
        description="Fifth address line.",
        examples=["UK"],
        json_schema_extra=identifier(IdentifierKind.ADDRESS),
    )
    postcode: Postcode | None = Field(
        default=None,
        description="Full UK postcode; any spacing or case accepted, held as 'CF10 1AA'.",
        examples=["CF10 1AA"],
        json_schema_extra=identifier(IdentifierKind.POSTCODE),
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Address:
        if not any(
            (self.line_1, self.line_2, self.line_3, self.line_4, self.line_5, self.postcode)
        ):
            raise PydanticCustomError(
                "address_empty", "address needs at least one line or a postcode"
            )
        return self


class PartnerRecord(ContractModel):
    """Metadata every partner record carries: who sent it, its id there, and which version it is.

    ``(source, record type, record_id, record_version)`` makes re-sent records idempotent:
    ingest drops a version it already has.
    """

    record_type: ClassVar[RecordType]
    allowed_sources: ClassVar[frozenset[SourceAgency]]

    source: SourceAgency = Field(
        description="The agency that sent the record; ingest checks it is the caller.",
        examples=["cafcass-cymru"],
    )
    record_id: RecordId = Field(
        description="The source's own id for this record, unique per source and record type.",
        examples=["CH-2019-000123"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
    record_version: RecordVersion = Field(
        description="Version of this record at the source, from 1; a higher one supersedes.",
        examples=[1],
    )
    extracted_at: UtcDateTime = Field(
        description="When the source extracted this version (ISO 8601 with timezone; held in UTC).",
        examples=["2024-05-01T09:30:00Z"],
    )

    @field_validator("source")
    @classmethod
    def _source_sends_this_kind(cls, value: SourceAgency) -> SourceAgency:
        if value not in cls.allowed_sources:
            raise PydanticCustomError(
                "source_not_allowed",
                "{record_type} records come only from {allowed}",
                {
                    "record_type": cls.record_type.value,
                    "allowed": ", ".join(sorted(s.value for s in cls.allowed_sources)),
                },
            )
        return value


class CaseScopedRecord(PartnerRecord):
    """A Cafcass record that belongs to a case."""

    allowed_sources: ClassVar[frozenset[SourceAgency]] = CAFCASS_SOURCES

    case_id: RecordId = Field(
        description="The source's id of the case this record belongs to (its record_id).",
        examples=["CASE-2019-004567"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
