"""How an adult party is related to a child of the case, with parental responsibility."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict, Field

from contracts.identifiers import IdentifierKind, identifier
from contracts.records.common import CaseScopedRecord, RecordId, RecordType

__all__ = ["PartyChildRelationshipRecord", "Relationship"]


class Relationship(StrEnum):
    """An adult's relationship to a child, as Cafcass records it."""

    MOTHER = "mother"
    FATHER = "father"
    STEP_PARENT = "step-parent"
    GRANDPARENT = "grandparent"
    OTHER_RELATIVE = "other-relative"
    OTHER = "other"


class PartyChildRelationshipRecord(CaseScopedRecord):
    """One adult-child pair in a case; mother-child links across cases rest on these."""

    record_type: ClassVar[RecordType] = RecordType.PARTY_CHILD_RELATIONSHIP
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cafcass-cymru",
                    "record_id": "REL-2019-000777",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "case_id": "CASE-2019-004567",
                    "adult_record_id": "AD-2019-000456",
                    "child_record_id": "CH-2019-000123",
                    "relationship": "mother",
                    "parental_responsibility": True,
                }
            ]
        }
    )

    adult_record_id: RecordId = Field(
        description="record_id of the adult party record.",
        examples=["AD-2019-000456"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
    child_record_id: RecordId = Field(
        description="record_id of the child record.",
        examples=["CH-2019-000123"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
    relationship: Relationship = Field(
        description="What the adult is to the child.", examples=["mother"]
    )
    parental_responsibility: bool | None = Field(
        default=None,
        description="Whether the adult has parental responsibility for the child.",
        examples=[True],
    )
