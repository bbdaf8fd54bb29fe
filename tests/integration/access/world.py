"""The demo's synthetic family-court world as access's research store would hold it.

Every case record of ``synth.world`` goes through pseudonymise's own split (the real
``handlers.pseudonymise``, with a test key) and access's own handler mapping, so the stored
content, week of birth, sex, LSOA and related tokens are what the platform stores. Link
results are drawn from the world's truth the way link reports them: an ALF per spine person
for 85 % of the records of people on the spine, a status code and a six-digit probability.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from dataclasses import dataclass

from contracts.envelope import Envelope, parse_data
from contracts.events import RECORD_RECEIVED_EVENTS, PseudonymisedRecordPublished
from contracts.records import RecordType
from services.access.handlers import to_stored_record
from services.access.storage.research_store import LinkResult, StoredRecord
from services.pseudonymise.data import SYNTHETIC_POSTCODE_LOOKUP
from services.pseudonymise.domain import (
    KeyRing,
    MasterKey,
    Pseudonymiser,
    load_ons_postcode_lookup,
)
from services.pseudonymise.handlers import pseudonymise
from synth.world import CASE_RECORD_TYPES, WorldConfig, build_world

__all__ = ["StoredWorld", "stored_world"]


@dataclass(frozen=True)
class StoredWorld:
    records: list[StoredRecord]
    links: list[LinkResult]


def _alf(spine_id: str) -> str:
    digest = hashlib.sha256(f"test alf|{spine_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _link(rng: random.Random, token: str, spine_id: str) -> LinkResult:
    if spine_id and rng.random() < 0.85:
        status = rng.choices((1, 4, 39), weights=(5, 3, 2))[0]
        low = {1: 1.0, 4: 0.97, 39: 0.9}[status]
        probability = round(rng.uniform(low, 1.0), 6)
        return LinkResult(token, 1, _alf(spine_id), status, probability, "fs-1")
    return LinkResult(token, 1, None, 99, round(rng.uniform(0.0, 0.9), 6), "fs-1")


def stored_world(config: WorldConfig | None = None, *, seed: int = 11) -> StoredWorld:
    """The world's case records (cases, children, adults, relationships, hearings) stored."""
    world = build_world(config or WorldConfig())
    key = MasterKey(hashlib.sha256(b"fjo access join-attack test key").digest())
    splitter = Pseudonymiser(
        KeyRing.single(key), load_ons_postcode_lookup(SYNTHETIC_POSTCODE_LOOKUP)
    )
    truth = {(t.source, t.record_id): t.spine_id for t in world.truth}
    rng = random.Random(seed)
    records: list[StoredRecord] = []
    links: list[LinkResult] = []
    for (source, kind), rows in world.records.items():
        if kind not in CASE_RECORD_TYPES:
            continue
        event_type = RECORD_RECEIVED_EVENTS[RecordType(kind)]
        for row in rows:
            event = event_type.model_validate({"record": row, "delivery_id": "dlv-join-attack"})
            for message in pseudonymise(splitter, event, uuid.uuid4()):
                published = parse_data(Envelope.from_bytes(message.value))
                if not isinstance(published, PseudonymisedRecordPublished):
                    continue  # the linkage keys: link's input, not access's
                stored = to_stored_record(published)
                records.append(stored)
                if (source, row["record_id"]) in truth:  # a person: link reports on it
                    links.append(_link(rng, stored.record_token, truth[source, row["record_id"]]))
    return StoredWorld(records, links)
