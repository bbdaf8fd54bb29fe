"""Ingest's events: a validated record per kind, and a quarantined line with its errors."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, ValidationError

from contracts._model import ContractModel, examples_of
from contracts.errors import error_path, safe_errors
from contracts.events.common import DeliveryId, Event
from contracts.identifiers import IdentifierKind, identifier
from contracts.objections import ObjectionRequest
from contracts.records import (
    AdultPartyRecord,
    CaseRecord,
    ChildRecord,
    HearingRecord,
    PartnerRecord,
    PartyChildRelationshipRecord,
    RecordType,
    SourceAgency,
    SpinePersonRecord,
)

__all__ = [
    "AdultPartyRecordReceived",
    "CaseRecordReceived",
    "ChildRecordReceived",
    "FieldError",
    "HearingRecordReceived",
    "ObjectionReceived",
    "PartyChildRelationshipRecordReceived",
    "RecordQuarantined",
    "RecordReceived",
    "SpinePersonRecordReceived",
]


class RecordReceived(Event):
    """A partner record that passed its contract, as ingest publishes it.

    One event type per record kind (not one union): each kind versions on its own, and
    pseudonymise registers one handler per type. Keyed by source, kind and record_id so that a
    record's versions stay in order.
    """

    record: PartnerRecord = Field(
        description="The validated record.", examples=examples_of(ChildRecord)
    )
    delivery_id: DeliveryId = Field(
        description="The delivery the record came in.", examples=["dlv-2024-05-01-0001"]
    )
    line_number: int | None = Field(
        default=None,
        ge=1,
        description="Line or row of the record in its delivery, from 1.",
        examples=[17],
    )

    def partition_key(self) -> str:
        """``<source>/<record type>/<record_id>``."""
        return f"{self.record.source.value}/{self.record.record_type.value}/{self.record.record_id}"


class CaseRecordReceived(RecordReceived):
    """A case record passed its contract."""

    event_type: ClassVar[str] = "ingest.case-received.v1"
    record: CaseRecord = Field(
        description="The validated case record.", examples=examples_of(CaseRecord)
    )


class ChildRecordReceived(RecordReceived):
    """A child record passed its contract."""

    event_type: ClassVar[str] = "ingest.child-received.v1"
    record: ChildRecord = Field(
        description="The validated child record.", examples=examples_of(ChildRecord)
    )


class AdultPartyRecordReceived(RecordReceived):
    """An adult party record passed its contract."""

    event_type: ClassVar[str] = "ingest.adult-party-received.v1"
    record: AdultPartyRecord = Field(
        description="The validated adult party record.", examples=examples_of(AdultPartyRecord)
    )


class PartyChildRelationshipRecordReceived(RecordReceived):
    """A party-child relationship record passed its contract."""

    event_type: ClassVar[str] = "ingest.party-child-relationship-received.v1"
    record: PartyChildRelationshipRecord = Field(
        description="The validated party-child relationship record.",
        examples=examples_of(PartyChildRelationshipRecord),
    )


class HearingRecordReceived(RecordReceived):
    """A hearing record passed its contract."""

    event_type: ClassVar[str] = "ingest.hearing-received.v1"
    record: HearingRecord = Field(
        description="The validated hearing record.", examples=examples_of(HearingRecord)
    )


class SpinePersonRecordReceived(RecordReceived):
    """A spine person record passed its contract."""

    event_type: ClassVar[str] = "ingest.spine-person-received.v1"
    record: SpinePersonRecord = Field(
        description="The validated spine person record.", examples=examples_of(SpinePersonRecord)
    )


class FieldError(ContractModel):
    """One reason a record was refused: where, what and which rule; never the rejected value."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "path": "address.postcode",
                    "message": "postcode must be a full UK postcode such as CF10 1AA",
                    "type": "postcode_format",
                }
            ]
        }
    )

    path: str = Field(
        max_length=512,
        description="Dotted field path ('address.postcode', 'outcomes.0.order_made'); "
        "empty for the whole record.",
        examples=["address.postcode"],
    )
    message: str = Field(
        min_length=1,
        max_length=1000,
        description="What is wrong, without the value.",
        examples=["postcode must be a full UK postcode such as CF10 1AA"],
    )
    type: str = Field(
        min_length=1,
        max_length=100,
        description="Machine-readable error type.",
        examples=["postcode_format"],
    )

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> tuple[FieldError, ...]:
        """The errors of ``exc`` without their inputs, for the partner's receipt and quarantine.

        Unknown field names are kept (the partner must see which key to fix): these go only to
        the partner and the identifiable quarantine topic. For logs use ``safe_errors(exc)``.
        """
        return tuple(
            cls(path=error_path(err["loc"]), message=err["msg"], type=err["type"])
            for err in safe_errors(exc, keep_unknown_keys=True)
        )


class RecordQuarantined(Event):
    """A line that failed its contract, kept with the reasons so that it can be fixed.

    Identifiable: ``original_line`` is the partner's input as sent.
    """

    event_type: ClassVar[str] = "ingest.record-quarantined.v1"

    delivery_id: DeliveryId = Field(
        description="The delivery the line came in.", examples=["dlv-2024-05-01-0001"]
    )
    source: SourceAgency = Field(
        description="The partner that sent the line.", examples=["cafcass-cymru"]
    )
    record_type: RecordType | None = Field(
        default=None,
        description="The record kind the line was meant to be, if known.",
        examples=["child"],
    )
    line_number: int = Field(
        ge=1, description="Line or row in the delivery, from 1.", examples=[18]
    )
    # Not stripped: the line is kept byte for byte as the partner sent it.
    original_line: Annotated[str, StringConstraints(strip_whitespace=False)] = Field(
        max_length=1_048_576,
        description="The line exactly as received (UTF-8 text).",
        examples=['{"record_id": "CH-2019-000124", "date_of_birth": "2999-01-01"}'],
        json_schema_extra=identifier(IdentifierKind.RAW),
    )
    errors: tuple[FieldError, ...] = Field(
        min_length=1,
        description="Why the line was refused.",
        examples=[
            [
                {
                    "path": "date_of_birth",
                    "message": "date must not be in the future",
                    "type": "date_in_future",
                }
            ]
        ],
    )

    def partition_key(self) -> str:
        """``<source>/<delivery_id>``: a delivery's quarantine stays in line order."""
        return f"{self.source.value}/{self.delivery_id}"


class ObjectionReceived(Event):
    """An objection, erasure request or opt-out ingest received and gave a receipt for.

    On ``ingest.records.v1`` with the partition key of the record it is about, so that
    pseudonymise reads it after every version of that record. Identifiable: it names the
    record by the partner's own id.
    """

    event_type: ClassVar[str] = "ingest.objection-received.v1"

    receipt_id: uuid.UUID = Field(
        description="Ingest's id of the request: how every later step names it.",
        examples=["5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10"],
    )
    received_at: AwareDatetime = Field(
        description="When ingest received the request (UTC).", examples=["2024-05-01T09:30:00Z"]
    )
    request: ObjectionRequest = Field(
        description="The request as the partner sent it.", examples=examples_of(ObjectionRequest)
    )

    def partition_key(self) -> str:
        """``<source>/<record type>/<record_id>``: the key of the record it is about."""
        r = self.request
        return f"{r.source.value}/{r.record_type.value}/{r.record_id}"
