"""Pseudonymise's output event ids: stable for a redelivered input, new under a new key.

Link and access skip an event id they have processed. A rotation replays the identifiable
input under the new key version (docs/pseudonymisation.md), so ids that ignored the key
version would make them skip every re-keyed record.
"""

from __future__ import annotations

import uuid

from contracts import examples_of
from contracts.events import ChildRecordReceived
from contracts.records import ChildRecord
from services.pseudonymise.domain import KeyRing, OnsPostcodeLookup, Pseudonymiser
from services.pseudonymise.handlers import pseudonymise
from services.runtime.publishing import OutgoingMessage
from tests.unit.pseudonymise.conftest import fixed_key


def _ids(messages: list[OutgoingMessage]) -> list[bytes]:
    return [dict(m.headers)["fjo-event-id"] for m in messages]


def test_a_replay_under_a_new_key_version_gets_new_event_ids(
    postcodes: OnsPostcodeLookup,
) -> None:
    ring = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2"))
    v1 = Pseudonymiser(ring, postcodes, version=1)
    v2 = Pseudonymiser(ring, postcodes, version=2)
    event = ChildRecordReceived(record=examples_of(ChildRecord)[0], delivery_id="dlv-1")
    input_id = uuid.uuid4()

    first, again, rekeyed = (pseudonymise(p, event, input_id) for p in (v1, v1, v2))

    assert len(first) == 2  # content and linkage keys
    assert _ids(again) == _ids(first)  # a redelivery: consumers skip it
    assert not set(_ids(rekeyed)) & set(_ids(first))  # a rotation: consumers take it
