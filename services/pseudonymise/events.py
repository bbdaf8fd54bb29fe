"""The split's two halves as bus events: content for access, linkage keys for link.

Event ids derive from the input event's id, so a handler retried after a crash re-publishes
the same ids and access and link apply each effect once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from contracts.events import (
    LinkageKeysPublished,
    ObjectionReceived,
    PseudonymisedRecordPublished,
    RecordObjected,
    RecordReceived,
)
from contracts.records import PERSON_RECORD_TYPES, RecordType, SourceAgency
from contracts.services import Service
from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS, PSEUDONYMISE_RECORDS
from services.pseudonymise.domain import SplitResult
from services.runtime.publishing import OutgoingMessage, derived_event_id, frame

__all__ = ["linkage_message", "objection_messages", "output_event_id", "split_to_messages"]

_EVENT_ID_NAMESPACE = uuid.UUID("6f1d2c84-3b8e-4f0e-9a51-2d7c9e4b8a10")


def _reference_name(field: str) -> str:
    """``case_id`` → ``case``, ``child_record_id`` → ``child``: a reference by its role."""
    for suffix in ("_record_id", "_id", "_number"):
        if field.endswith(suffix):
            return field[: -len(suffix)]
    return field


def _rename_nested_references(value: Any, names: Mapping[str, str]) -> Any:
    # A nested reference (outcomes[].child_record_id) now holds a token: name it as one, so
    # content carries no key that names an identifier.
    if isinstance(value, list):
        return [_rename_nested_references(v, names) for v in value]
    if isinstance(value, dict):
        return {names.get(k, k): _rename_nested_references(v, names) for k, v in value.items()}
    return value


def output_event_id(input_event_id: uuid.UUID, kind: str, key_version: int) -> uuid.UUID:
    """The id of an output (``kind``: "content" or "linkage-keys") of one input record.

    Stable per input, kind and key version: a redelivered input gets the same id (so
    consumers skip it), while a rotation's replay under a new key version gets new ones (with
    the same ids, link and access would skip the re-keyed records as already processed)."""
    return derived_event_id(_EVENT_ID_NAMESPACE, input_event_id, kind, f"key-v{key_version}")


def split_to_messages(
    event: RecordReceived, split: SplitResult, *, input_event_id: uuid.UUID
) -> list[OutgoingMessage]:
    """Content (every record) and linkage keys (person records) for one received record."""
    record = event.record
    content = split.content
    nested = {"child_record_id": "child_token", "adult_record_id": "adult_token"}
    body: dict[str, Any] = _rename_nested_references(dict(content["fields"]), nested)
    for extra in ("residences", "month_of_death", "area_quality"):
        if content.get(extra) is not None:
            body[extra] = content[extra]
    flags = tuple(f.value for f in split.flags)
    published = PseudonymisedRecordPublished(
        record_token=content["record_token"],
        record_type=record.record_type,
        source=record.source,
        record_version=record.record_version,
        key_version=content["key_version"],
        week_of_birth=content.get("week_of_birth"),
        sex=content.get("sex"),
        lsoa=content.get("lsoa"),
        local_authority=content.get("local_authority"),
        related_tokens={
            _reference_name(k): v for k, v in content["references"].items() if v is not None
        },
        content=body,
        flags=flags,
    )
    out = [
        frame(
            published,
            source=Service.PSEUDONYMISE,
            event_id=output_event_id(input_event_id, "content", content["key_version"]),
            delivery_id=event.delivery_id,
        )
    ]
    if record.record_type in PERSON_RECORD_TYPES:
        out.append(
            linkage_message(
                split,
                record_type=record.record_type,
                source=record.source,
                record_version=record.record_version,
                input_event_id=input_event_id,
                delivery_id=event.delivery_id,
            )
        )
    return out


def linkage_message(
    split: SplitResult,
    *,
    record_type: RecordType,
    source: SourceAgency,
    record_version: int,
    input_event_id: uuid.UUID,
    delivery_id: str | None,
) -> OutgoingMessage:
    """A person record's linkage keys as the event link consumes (also a re-encode's)."""
    keys = LinkageKeysPublished.of(
        split.linkage,
        record_token=split.record_token,
        record_type=record_type,
        source=source,
        record_version=record_version,
        key_version=split.key_version,
        bloom_scheme=split.bloom_scheme,
    )
    return frame(
        keys,
        source=Service.PSEUDONYMISE,
        event_id=output_event_id(input_event_id, "linkage-keys", split.key_version),
        delivery_id=delivery_id,
    )


def objection_messages(
    event: ObjectionReceived, *, record_token: str, erased_versions: int, input_event_id: uuid.UUID
) -> list[OutgoingMessage]:
    """An objection without the partner's id, on the topics that carry the record: content
    (every record) and linkage keys (person records), keyed by its record token, so that on
    each it follows the record's own events and replaces them as the latest value."""
    request = event.request
    objected = RecordObjected(
        receipt_id=event.receipt_id,
        kind=request.kind,
        subject=request.subject,
        record_token=record_token,
        record_type=request.record_type,
        source=request.source,
        erased_versions=erased_versions,
    )
    topics = [PSEUDONYMISE_RECORDS.name]
    if request.record_type in PERSON_RECORD_TYPES:
        topics.append(PSEUDONYMISE_LINKAGE_KEYS.name)
    return [
        frame(
            objected,
            source=Service.PSEUDONYMISE,
            topic=topic,
            # No key version: the objection of a record is one event, whatever key made its
            # token (the record token key does not rotate with the linkage key).
            event_id=derived_event_id(_EVENT_ID_NAMESPACE, input_event_id, "objected", topic),
        )
        for topic in topics
    ]
