"""Event payloads on the bus, one class per type string ``<domain>.<event>.v<N>``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from contracts.events.common import Event, QualityFlag
from contracts.events.dead_letter import MessageDeadLettered
from contracts.events.ingest import (
    AdultPartyRecordReceived,
    CaseRecordReceived,
    ChildRecordReceived,
    FieldError,
    HearingRecordReceived,
    ObjectionReceived,
    PartyChildRelationshipRecordReceived,
    RecordQuarantined,
    RecordReceived,
    SpinePersonRecordReceived,
)
from contracts.events.link import (
    LINKED_STATUSES,
    LinkReason,
    LinkResultPublished,
    LinkStatus,
    PersonObjected,
)
from contracts.events.pseudonymise import (
    IDENTIFIER_FIELD_NAMES,
    EncodedAddress,
    LinkageKeys,
    LinkageKeysPublished,
    PseudonymisedRecordPublished,
    RecordObjected,
)
from contracts.records import RecordType

__all__ = [
    "ALL_EVENTS",
    "IDENTIFIER_FIELD_NAMES",
    "LINKED_STATUSES",
    "RECORD_RECEIVED_EVENTS",
    "AdultPartyRecordReceived",
    "CaseRecordReceived",
    "ChildRecordReceived",
    "EncodedAddress",
    "Event",
    "FieldError",
    "HearingRecordReceived",
    "LinkReason",
    "LinkResultPublished",
    "LinkStatus",
    "LinkageKeys",
    "LinkageKeysPublished",
    "MessageDeadLettered",
    "ObjectionReceived",
    "PartyChildRelationshipRecordReceived",
    "PersonObjected",
    "PseudonymisedRecordPublished",
    "QualityFlag",
    "RecordObjected",
    "RecordQuarantined",
    "RecordReceived",
    "SpinePersonRecordReceived",
]

RECORD_RECEIVED_EVENTS: Mapping[RecordType, type[RecordReceived]] = MappingProxyType(
    {
        RecordType.CASE: CaseRecordReceived,
        RecordType.CHILD: ChildRecordReceived,
        RecordType.ADULT_PARTY: AdultPartyRecordReceived,
        RecordType.PARTY_CHILD_RELATIONSHIP: PartyChildRelationshipRecordReceived,
        RecordType.HEARING: HearingRecordReceived,
        RecordType.SPINE_PERSON: SpinePersonRecordReceived,
    }
)
"""The ingest event for each record kind."""

ALL_EVENTS: tuple[type[Event], ...] = (
    *RECORD_RECEIVED_EVENTS.values(),
    ObjectionReceived,
    RecordQuarantined,
    PseudonymisedRecordPublished,
    RecordObjected,
    LinkageKeysPublished,
    LinkResultPublished,
    PersonObjected,
    MessageDeadLettered,
)
"""Every event type fjo publishes, in a stable order."""
