"""A hearing in a case: its type, when it sat (or was due to), and what happened."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts.records.common import CaseScopedRecord, CourtCode, RecordType
from contracts.records.dates import IsoDate

__all__ = ["HearingOutcome", "HearingRecord", "HearingStatus", "HearingType"]


class HearingType(StrEnum):
    """Hearing types in public law (CMH, IRH) and private law (FHDRA, DRA) proceedings."""

    CASE_MANAGEMENT = "case-management"
    INTERIM = "interim"
    ISSUES_RESOLUTION = "irh"
    FINAL = "final"
    FIRST_HEARING_DISPUTE_RESOLUTION = "fhdra"
    DISPUTE_RESOLUTION = "dra"
    OTHER = "other"


class HearingStatus(StrEnum):
    """Where the hearing stands."""

    LISTED = "listed"
    EFFECTIVE = "effective"
    VACATED = "vacated"
    ADJOURNED = "adjourned"


class HearingOutcome(StrEnum):
    """What came of a hearing that sat."""

    DIRECTIONS_GIVEN = "directions-given"
    INTERIM_ORDER_MADE = "interim-order-made"
    FINAL_ORDER_MADE = "final-order-made"
    ADJOURNED = "adjourned"
    WITHDRAWN = "withdrawn"
    OTHER = "other"


class HearingRecord(CaseScopedRecord):
    """One hearing; its dates may lie ahead (listed hearings), so today is no bound."""

    record_type: ClassVar[RecordType] = RecordType.HEARING
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cafcass-cymru",
                    "record_id": "HR-2019-001234",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "case_id": "CASE-2019-004567",
                    "hearing_type": "irh",
                    "hearing_date": "2019-11-05",
                    "end_date": "2019-11-06",
                    "status": "effective",
                    "outcome": "directions-given",
                    "court": "Cardiff Family Court",
                }
            ]
        }
    )

    hearing_type: HearingType = Field(description="Kind of hearing.", examples=["irh"])
    hearing_date: IsoDate = Field(
        description="Date the hearing starts (or is listed for).", examples=["2019-11-05"]
    )
    end_date: IsoDate | None = Field(
        default=None,
        description="Last day of a hearing over several days; not before it starts.",
        examples=["2019-11-06"],
    )
    status: HearingStatus = Field(
        description="Listed, effective, vacated or adjourned.", examples=["effective"]
    )
    outcome: HearingOutcome | None = Field(
        default=None,
        description="What came of the hearing, once it sat.",
        examples=["directions-given"],
    )
    court: CourtCode | None = Field(
        default=None, description="Venue or court code.", examples=["Cardiff Family Court"]
    )

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("hearing_date")
        if value is not None and isinstance(start, date) and value < start:
            raise PydanticCustomError("date_order", "end_date must not be before hearing_date")
        return value
