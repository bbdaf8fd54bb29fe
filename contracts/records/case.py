"""A family-court case as Cafcass records it: law type, orders sought, dates, outcomes."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.identifiers import IdentifierKind, identifier
from contracts.records.common import (
    CAFCASS_SOURCES,
    CourtCode,
    LocalAuthorityCode,
    PartnerRecord,
    RecordId,
    RecordType,
    SourceAgency,
)
from contracts.records.dates import IsoDate, PastDate

__all__ = [
    "ApplicantType",
    "CaseRecord",
    "ChildOutcome",
    "LawType",
    "OrderMade",
    "OrderSought",
]


class LawType(StrEnum):
    """Public law (a local authority applies, Children Act 1989 Part 4) or private law."""

    PUBLIC = "public"
    PRIVATE = "private"


class OrderSought(StrEnum):
    """An order applied for, named by its Children Act 1989 section."""

    CARE = "s31-care"
    SUPERVISION = "s31-supervision"
    INTERIM_CARE = "s38-interim-care"
    INTERIM_SUPERVISION = "s38-interim-supervision"
    EMERGENCY_PROTECTION = "s44-emergency-protection"
    EDUCATION_SUPERVISION = "s36-education-supervision"
    OTHER_PART_4 = "other-part-4"
    CHILD_ARRANGEMENTS = "s8-child-arrangements"
    PROHIBITED_STEPS = "s8-prohibited-steps"
    SPECIFIC_ISSUE = "s8-specific-issue"
    PARENTAL_RESPONSIBILITY = "s4-parental-responsibility"
    OTHER_PRIVATE = "other-private"

    @property
    def law_type(self) -> LawType:
        """The law type this order belongs to."""
        return LawType.PUBLIC if self in _PUBLIC_LAW_ORDERS else LawType.PRIVATE


_PUBLIC_LAW_ORDERS = frozenset(
    {
        OrderSought.CARE,
        OrderSought.SUPERVISION,
        OrderSought.INTERIM_CARE,
        OrderSought.INTERIM_SUPERVISION,
        OrderSought.EMERGENCY_PROTECTION,
        OrderSought.EDUCATION_SUPERVISION,
        OrderSought.OTHER_PART_4,
    }
)


class ApplicantType(StrEnum):
    """Who applied."""

    LOCAL_AUTHORITY = "local-authority"
    PARENT = "parent"
    OTHER_RELATIVE = "other-relative"
    OTHER = "other"


class OrderMade(StrEnum):
    """What the court decided for one child when the case ended."""

    CARE_ORDER = "care-order"
    SUPERVISION_ORDER = "supervision-order"
    PLACEMENT_ORDER = "placement-order"
    SPECIAL_GUARDIANSHIP_ORDER = "special-guardianship-order"
    CHILD_ARRANGEMENTS_ORDER = "child-arrangements-order"
    PROHIBITED_STEPS_ORDER = "prohibited-steps-order"
    SPECIFIC_ISSUE_ORDER = "specific-issue-order"
    PARENTAL_RESPONSIBILITY_ORDER = "parental-responsibility-order"
    EDUCATION_SUPERVISION_ORDER = "education-supervision-order"
    NO_ORDER = "no-order"
    WITHDRAWN = "withdrawn"
    REFUSED = "refused"
    OTHER = "other"


class ChildOutcome(ContractModel):
    """One order made (or none) for one child of the case; a child may have several."""

    child_record_id: RecordId = Field(
        description="record_id of the child record this outcome is for.",
        examples=["CH-2019-000123"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
    order_made: OrderMade = Field(
        description="The order made, or no-order / withdrawn / refused.", examples=["care-order"]
    )
    order_date: IsoDate | None = Field(
        default=None, description="Date the order was made (YYYY-MM-DD).", examples=["2020-02-14"]
    )


class CaseRecord(PartnerRecord):
    """A case: its record_id is the source's case id, which other records cite as case_id."""

    record_type: ClassVar[RecordType] = RecordType.CASE
    allowed_sources: ClassVar[frozenset[SourceAgency]] = CAFCASS_SOURCES
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "cafcass-cymru",
                    "record_id": "CASE-2019-004567",
                    "record_version": 1,
                    "extracted_at": "2024-05-01T09:30:00Z",
                    "court_case_number": "CF19C00123",
                    "law_type": "public",
                    "orders_sought": ["s31-care", "s38-interim-care"],
                    "applicant_type": "local-authority",
                    "local_authority_code": "W06000015",
                    "court": "Cardiff Family Court",
                    "received_date": "2019-03-04",
                    "issued_date": "2019-03-01",
                    "first_hearing_date": "2019-03-12",
                    "final_hearing_date": "2020-02-14",
                    "closed_date": "2020-03-01",
                    "outcomes": [
                        {
                            "child_record_id": "CH-2019-000123",
                            "order_made": "care-order",
                            "order_date": "2020-02-14",
                        }
                    ],
                }
            ]
        }
    )

    court_case_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The court's case number; dropped by pseudonymise (it names a real case).",
        examples=["CF19C00123"],
        json_schema_extra=identifier(IdentifierKind.REFERENCE),
    )
    law_type: LawType = Field(description="Public or private law.", examples=["public"])
    orders_sought: tuple[OrderSought, ...] = Field(
        default=(),
        description="Orders applied for; each must belong to the case's law type.",
        examples=[["s31-care", "s38-interim-care"]],
    )
    applicant_type: ApplicantType | None = Field(
        default=None, description="Who applied.", examples=["local-authority"]
    )
    local_authority_code: LocalAuthorityCode | None = Field(
        default=None,
        validate_default=True,
        description="ONS code of the local authority applying or responsible; required when "
        "the applicant is a local authority.",
        examples=["W06000015"],
    )
    court: CourtCode | None = Field(
        default=None,
        description="Court or hearing centre the case is issued in.",
        examples=["Cardiff Family Court"],
    )
    received_date: PastDate = Field(
        description="Date Cafcass received the case (YYYY-MM-DD).", examples=["2019-03-04"]
    )
    issued_date: PastDate | None = Field(
        default=None, description="Date the court issued the application.", examples=["2019-03-01"]
    )
    first_hearing_date: IsoDate | None = Field(
        default=None,
        description="Date of the first hearing; not before issue.",
        examples=["2019-03-12"],
    )
    final_hearing_date: IsoDate | None = Field(
        default=None,
        description="Date of the final hearing; not before the first hearing.",
        examples=["2020-02-14"],
    )
    closed_date: PastDate | None = Field(
        default=None,
        description="Date Cafcass closed the case; not before it was received or issued.",
        examples=["2020-03-01"],
    )
    outcomes: tuple[ChildOutcome, ...] = Field(
        default=(),
        description="Orders made per child when the case ended.",
        examples=[[{"child_record_id": "CH-2019-000123", "order_made": "care-order"}]],
    )

    @field_validator("orders_sought")
    @classmethod
    def _orders_match_law_type(
        cls, value: tuple[OrderSought, ...], info: ValidationInfo
    ) -> tuple[OrderSought, ...]:
        law_type = info.data.get("law_type")
        for order in value:
            if law_type is not None and order.law_type is not law_type:
                raise PydanticCustomError(
                    "order_law_type_mismatch",
                    "{order} is a {order_law} law order but the case is {law} law",
                    {
                        "order": order.value,
                        "order_law": order.law_type.value,
                        "law": law_type.value,
                    },
                )
        return value

    @field_validator("local_authority_code")
    @classmethod
    def _local_authority_applicant_named(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        if value is None and info.data.get("applicant_type") is ApplicantType.LOCAL_AUTHORITY:
            raise PydanticCustomError(
                "local_authority_required",
                "local_authority_code is required when the applicant is a local authority",
            )
        return value

    @field_validator("first_hearing_date")
    @classmethod
    def _first_hearing_after_issue(cls, value: date | None, info: ValidationInfo) -> date | None:
        _not_before(value, info, "issued_date")
        return value

    @field_validator("final_hearing_date")
    @classmethod
    def _final_after_first_hearing(cls, value: date | None, info: ValidationInfo) -> date | None:
        _not_before(value, info, "first_hearing_date")
        return value

    @field_validator("closed_date")
    @classmethod
    def _closed_after_received_and_issued(
        cls, value: date | None, info: ValidationInfo
    ) -> date | None:
        _not_before(value, info, "received_date")
        _not_before(value, info, "issued_date")
        return value


def _not_before(value: date | None, info: ValidationInfo, earlier_field: str) -> None:
    earlier = info.data.get(earlier_field)
    if value is not None and isinstance(earlier, date) and value < earlier:
        raise PydanticCustomError(
            "date_order",
            "{field} must not be before {earlier_field}",
            {"field": info.field_name or "", "earlier_field": earlier_field},
        )
