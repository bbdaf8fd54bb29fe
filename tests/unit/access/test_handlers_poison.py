"""A payload the research store can never read is poison: dead-lettered at once, not retried.

(The reliability tests found an undecodable link result retried three times, holding up its
partition, before it was dead-lettered as a ValidationError.)
"""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest

from contracts.topics import LINK_RESULTS, PSEUDONYMISE_RECORDS
from services.access.handlers import handle_link_results, handle_pseudonymised_records
from services.runtime.bus.api import Message
from services.runtime.delivery import Batch, PoisonMessage

ENVELOPE = {
    "event_id": "6f1c2b9e-3f5a-4c1e-9b7d-2a4e8c6d0f11",
    "type": "link.result-published.v1",
    "source": "link",
    "time": "2024-05-01T09:30:00Z",
    "data": {"record_token": "not enough"},
}


def _message(topic: str, value: bytes) -> Message:
    return Message(topic, 0, 7, b"k", value, (), 0)


@pytest.mark.parametrize(
    "value",
    [b"\xfe\xfe not json", b'{"not": "an envelope"}', json.dumps(ENVELOPE).encode()],
    ids=["undecodable", "not-an-envelope", "breaks-its-contract"],
)
@pytest.mark.parametrize(
    ("topic", "handler"),
    [
        (LINK_RESULTS.name, handle_link_results),
        (PSEUDONYMISE_RECORDS.name, handle_pseudonymised_records),
    ],
    ids=["link-result", "record"],
)
def test_an_unreadable_payload_is_a_poison_message(topic, handler, value: bytes) -> None:
    with pytest.raises(PoisonMessage) as raised:
        batch = Batch((_message(topic, value),), lambda _m: nullcontext())
        handler(None, batch)  # type: ignore[arg-type]  # never reaches the DB
    assert value.decode(errors="replace") not in str(raised.value)
