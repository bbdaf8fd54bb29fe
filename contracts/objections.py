"""The vocabulary of objections, erasure requests and opt-outs, shared by every service.

A request names what it is about only by the partner's own keys (source, record type,
record id), never by content; its reason is a code from a small list, never free text (text
could carry an identifier past pseudonymise).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.identifiers import IdentifierKind, identifier
from contracts.records import RecordType, SourceAgency
from contracts.records.common import RecordId

__all__ = [
    "ObjectionKind",
    "ObjectionOutcome",
    "ObjectionReason",
    "ObjectionRequest",
    "ObjectionSubject",
    "RefusalReason",
    "RequestId",
]


class ObjectionKind(StrEnum):
    """What the person (or the partner for them) asks."""

    OBJECTION = "objection"
    """Article 21 objection: stop using the data; it leaves the research store and linkage."""
    ERASURE = "erasure"
    """Article 17 erasure: as an objection, and pseudonymise shreds what it keeps too."""
    OPT_OUT = "opt-out"
    """National data opt-out style: kept and linked, left out of extracts of projects whose
    legal basis requires opt-outs to apply."""


class ObjectionSubject(StrEnum):
    """Whether the request is about one record or about a person (a spine person)."""

    RECORD = "record"
    PERSON = "person"


class ObjectionReason(StrEnum):
    """Why the request was made: a code, never text."""

    DATA_SUBJECT_REQUEST = "data-subject-request"
    """The person asked (an Article 15-22 request)."""
    NATIONAL_OPT_OUT = "national-opt-out"
    """The person is on the national data opt-out list."""
    COURT_ORDER = "court-order"
    """A court ordered the record withdrawn."""
    RECORD_WITHDRAWN = "record-withdrawn"
    """The partner withdrew the record (sent in error)."""
    OTHER = "other"


class RefusalReason(StrEnum):
    """Why a request was not applied (counted, never lost)."""

    UNKNOWN_RECORD = "unknown-record"
    """fjo never held the record the request names."""


class ObjectionOutcome(StrEnum):
    """What became of a request where it was applied."""

    APPLIED = "applied"
    REFUSED = "refused"


RequestId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
"""The client's own id for a request: repeating it returns the same receipt."""


class ObjectionRequest(ContractModel):
    """An objection, erasure request or opt-out as a partner sends it to ingest.

    A person is a spine person, so a request about a person comes from the spine's owner and
    names the spine person's record; an opt-out is always about a person.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "obj-2024-05-01-0001",
                    "kind": "objection",
                    "subject": "record",
                    "source": "cafcass-cymru",
                    "record_type": "child",
                    "record_id": "CH-2019-000123",
                    "reason": "data-subject-request",
                }
            ]
        }
    )

    request_id: RequestId = Field(
        description="The client's own id for this request; a repeat returns the same receipt. "
        "Stays in ingest: downstream services know the request by its receipt id.",
        examples=["obj-2024-05-01-0001"],
    )
    kind: ObjectionKind = Field(description="What is asked.", examples=["objection"])
    subject: ObjectionSubject = Field(
        description="One record, or a person (a spine person: the spine's owner only).",
        examples=["record"],
    )
    source: SourceAgency = Field(
        description="The agency that sent the record; must be the caller.",
        examples=["cafcass-cymru"],
    )
    record_type: RecordType = Field(
        description="Kind of the record; spine-person for a person.", examples=["child"]
    )
    record_id: RecordId = Field(
        description="The source's own id of the record (the spine person's for a person).",
        examples=["CH-2019-000123"],
        json_schema_extra=identifier(IdentifierKind.RECORD_ID),
    )
    reason: ObjectionReason = Field(
        description="Why, as a code (no free text).", examples=["data-subject-request"]
    )

    @model_validator(mode="after")
    def _person_is_a_spine_person(self) -> Self:
        if self.subject is ObjectionSubject.PERSON and (
            self.record_type is not RecordType.SPINE_PERSON or self.source is not SourceAgency.WDS
        ):
            raise PydanticCustomError(
                "person_not_spine",
                "a request about a person names a spine-person record of the spine's owner (wds)",
            )
        if self.kind is ObjectionKind.OPT_OUT and self.subject is not ObjectionSubject.PERSON:
            raise PydanticCustomError("opt_out_not_person", "an opt-out is about a person")
        return self
