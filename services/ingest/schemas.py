"""What ingest's API returns: receipts and delivery pages (never a record's values)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import examples_of
from contracts.objections import ObjectionKind, ObjectionRequest, ObjectionSubject
from services.runtime.pagination import Page

__all__ = [
    "DeliveryPage",
    "DeliverySummary",
    "ObjectionCount",
    "ObjectionReceipt",
    "ObjectionsReceived",
    "QuarantineReason",
    "QuarantineSource",
    "QuarantineSummary",
    "Receipt",
    "RecordError",
]

DeliveryStatus = Literal["processing", "complete", "failed"]

_RECEIPT_EXAMPLE: dict[str, Any] = {
    "delivery_id": "5b0e1c6e-8d1f-4a57-9a0c-3f1f5d1c2b7a",
    "status": "complete",
    "source": "cafcass-cymru",
    "record_type": "child",
    "format": "ndjson",
    "received": 4,
    "accepted": 2,
    "rejected": 1,
    "duplicates": 1,
    "errors": [
        {
            "line": 3,
            "path": "date_of_birth",
            "message": "date must not be in the future",
            "type": "date_in_future",
        }
    ],
    "errors_omitted": 0,
    "content_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "body_bytes": 1733,
    "created_at": "2024-05-01T09:30:00Z",
    "completed_at": "2024-05-01T09:30:01Z",
    "failure": None,
}


class RecordError(BaseModel):
    """Why one record was refused: its line and field path, never the value it held."""

    line: int = Field(
        description="Line of the record (CSV: the row's first line; JSON batch: 1-based "
        "position in the array).",
        examples=[3],
    )
    path: str = Field(
        description="Dotted field path; empty when the whole line is at fault.",
        examples=["address.postcode"],
    )
    message: str = Field(description="What is wrong.", examples=["date must not be in the future"])
    type: str = Field(description="Machine-readable error type.", examples=["date_in_future"])


class DeliverySummary(BaseModel):
    """A delivery's counts and state: received = accepted + rejected + duplicates."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RECEIPT_EXAMPLE]})

    delivery_id: str = Field(description="Ingest's id of the delivery.")
    status: DeliveryStatus = Field(
        description="`complete` once every record is on the bus (acknowledged) or in "
        "quarantine; `failed` when processing stopped (re-send with the same Idempotency-Key)."
    )
    source: str = Field(description="The partner agency that sent it (from the token).")
    record_type: str = Field(description="The record kind of every record in it.")
    format: str = Field(description="ndjson, csv or json.")
    received: int = Field(description="Records read (blank lines are not records).")
    accepted: int = Field(description="Records published to the records topic.")
    rejected: int = Field(description="Records refused and sent to quarantine.")
    duplicates: int = Field(
        description="Records whose (source, type, id, version) was already accepted."
    )
    content_sha256: str = Field(description="SHA-256 of the body as received (hex).")
    body_bytes: int = Field(description="Size of the body in bytes.")
    created_at: datetime
    completed_at: datetime | None = None
    failure: str | None = Field(None, description="Why a failed delivery stopped.")


class Receipt(DeliverySummary):
    """A delivery's receipt: counts, and each refused record by line and field path."""

    errors: list[RecordError] = Field(
        default_factory=list,
        description="Per-record errors in line order, up to the service's limit.",
    )
    errors_omitted: int = Field(
        0, description="Errors beyond the limit, counted but not listed here."
    )


class DeliveryPage(Page[DeliverySummary]):
    """One page of the caller's deliveries, newest first."""


class QuarantineSource(BaseModel):
    """Quarantined records of one partner and record type."""

    source: str = Field(description="The partner agency.", examples=["cafcass-cymru"])
    record_type: str = Field(description="The record kind.", examples=["child"])
    deliveries: int = Field(description="Deliveries with at least one rejected record.")
    rejected: int = Field(description="Records refused and sent to quarantine.")


class QuarantineReason(BaseModel):
    """How often one error was found in quarantined records (a record may have several)."""

    source: str = Field(examples=["cafcass-cymru"])
    record_type: str = Field(examples=["child"])
    type: str = Field(description="Machine-readable error type.", examples=["date_in_future"])
    path: str = Field(
        description="Dotted field path; empty when the whole line is at fault.",
        examples=["date_of_birth"],
    )
    errors: int = Field(description="Stored errors of this type at this path.")


class QuarantineSummary(BaseModel):
    """What ingest has quarantined and why, across every partner (for operators): counts,
    error types and field paths only, never a record, a line number or a value."""

    rejected: int = Field(description="Records in quarantine, all partners.")
    errors_not_itemised: int = Field(
        description="Errors past a delivery's receipt limit: counted, their reasons not kept "
        "here (each rejected record carries its reasons on the quarantine topic)."
    )
    sources: list[QuarantineSource]
    reasons: list[QuarantineReason] = Field(description="Most frequent first.")


class ObjectionReceipt(ObjectionRequest):
    """The receipt of an objection, erasure request or opt-out: the request as ingest holds
    it, its receipt id (how every later step names it) and when it came."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **examples_of(ObjectionRequest)[0],
                    "receipt_id": "5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10",
                    "received_at": "2024-05-01T09:30:00Z",
                }
            ]
        }
    )

    receipt_id: uuid.UUID = Field(description="Ingest's id of the request.")
    received_at: datetime = Field(description="When ingest received it (UTC).")


class ObjectionCount(BaseModel):
    """Requests received of one kind and subject."""

    kind: ObjectionKind = Field(examples=["objection"])
    subject: ObjectionSubject = Field(examples=["person"])
    received: int = Field(description="Requests received (each request id once).", examples=[3])


class ObjectionsReceived(BaseModel):
    """What ingest has received (operators): with access's summary of what was applied and
    refused, the counts reconcile (received = applied + refused)."""

    received: int = Field(description="Requests received, every partner.", examples=[3])
    by_kind: list[ObjectionCount]
