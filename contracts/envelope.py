"""The envelope every bus message travels in: who, what type, when, key, trace, and the payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.events.common import DeliveryId, Event
from contracts.naming import VERSIONED_NAME_PATTERN, split_versioned_name
from contracts.records.dates import UtcDateTime
from contracts.registry import EVENT_TYPES, EventRegistry
from contracts.services import Service

__all__ = ["Envelope", "parse_data"]

EventTypeName = Annotated[str, StringConstraints(pattern=VERSIONED_NAME_PATTERN)]


class Envelope(ContractModel):
    """One bus message; ``data`` is the payload as JSON and ``parse_data`` gives the typed event.

    Holding ``data`` as JSON (not a model) keeps the envelope readable by a consumer that does
    not know the type, and lets old versions be upcast before they meet the model.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "6f1c1f5e-3f43-4a51-9a39-0d1f2b8d2a11",
                    "type": "link.result-published.v1",
                    "source": "link",
                    "time": "2024-05-01T09:31:02.120000Z",
                    "partition_key": "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi",
                    "schema_version": 1,
                    "data": {"record_token": "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"},
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
            ]
        }
    )

    event_id: UUID = Field(
        description="Unique id of this event; consumers de-duplicate on it.",
        examples=["6f1c1f5e-3f43-4a51-9a39-0d1f2b8d2a11"],
    )
    type: EventTypeName = Field(
        description="Event type, <domain>.<event>.v<N>.", examples=["ingest.child-received.v1"]
    )
    source: Service = Field(description="The service that produced the event.", examples=["ingest"])
    time: UtcDateTime = Field(
        description="When the event was produced (UTC).", examples=["2024-05-01T09:31:02.120000Z"]
    )
    partition_key: str = Field(
        min_length=1,
        max_length=512,
        description="Bus key; events with one key stay in order.",
        examples=["cafcass-cymru/child/CH-2019-000123"],
    )
    schema_version: int = Field(
        ge=1, description="Version of data's schema: the N of the type's .v<N>.", examples=[1]
    )
    data: dict[str, JsonValue] = Field(
        description="The event payload as JSON.", examples=[{"delivery_id": "dlv-2024-05-01-0001"}]
    )
    trace_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="W3C trace id of the trace the event belongs to.",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
    )
    correlation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Id shared by the events of one piece of work (e.g. a partner request).",
        examples=["req-01HXYZABCDEF"],
    )
    delivery_id: DeliveryId | None = Field(
        default=None,
        description="The partner delivery the event descends from.",
        examples=["dlv-2024-05-01-0001"],
    )

    @field_validator("schema_version")
    @classmethod
    def _matches_type_suffix(cls, value: int, info: ValidationInfo) -> int:
        event_type = info.data.get("type")
        if isinstance(event_type, str) and split_versioned_name(event_type)[1] != value:
            raise PydanticCustomError(
                "schema_version_mismatch", "schema_version must equal the type's .v<N> suffix"
            )
        return value

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        source: Service | str,
        partition_key: str | None = None,
        trace_id: str | None = None,
        correlation_id: str | None = None,
        delivery_id: str | None = None,
        event_id: UUID | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Wrap ``event``; the key defaults to ``event.partition_key()``, the time to now."""
        return cls(
            event_id=event_id or uuid4(),
            type=event.event_type,
            source=Service(source),
            time=time or datetime.now(UTC),
            partition_key=partition_key if partition_key is not None else event.partition_key(),
            schema_version=split_versioned_name(event.event_type)[1],
            data=event.model_dump(mode="json"),
            trace_id=trace_id,
            correlation_id=correlation_id,
            delivery_id=delivery_id,
        )

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON; empty optional fields left out."""
        return self.model_dump_json(exclude_none=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> Envelope:
        """Parse ``to_bytes`` output; unknown fields are ignored (a newer producer may add some)."""
        return cls.model_validate_json(bytes(raw), extra="ignore")


def parse_data(envelope: Envelope, registry: EventRegistry | None = None) -> Event:
    """The envelope's payload as the latest model of its type, upcast if it is older."""
    return (registry or EVENT_TYPES).parse(envelope.type, envelope.schema_version, envelope.data)
