"""An objection in pseudonymise: the record's own token, the vault shredded and the token
registered (not for an opt-out), the objection published on the record's topics without the
partner's id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS, ObjectionReceived
from contracts.objections import ObjectionRequest
from contracts.records import RecordType
from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS, PSEUDONYMISE_RECORDS
from services.pseudonymise.domain import Pseudonymiser
from services.pseudonymise.domain.vault import KeyEncryptionKey
from services.pseudonymise.erasures import erasures, suppression_reasons
from services.pseudonymise.handlers import object_to, pseudonymise
from services.pseudonymise.vault import Vault, metadata, vault
from tests.canaries import canary_records


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    metadata.create_all(engine)
    return engine


def _objection(
    kind: str, record_type: RecordType, record_id: str, source: str
) -> ObjectionReceived:
    person = record_type is RecordType.SPINE_PERSON
    return ObjectionReceived(
        receipt_id=uuid.uuid4(),
        received_at=datetime(2024, 5, 1, tzinfo=UTC),
        request=ObjectionRequest(
            request_id="obj-1",
            kind=kind,
            subject="person" if person else "record",
            source=source,
            record_type=record_type,
            record_id=record_id,
            reason="national-opt-out" if kind == "opt-out" else "data-subject-request",
        ),
    )


def _versions(engine: Engine, token: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(vault).where(vault.c.record_token == token)
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("kind", "record_type", "erased", "topics"),
    [
        (
            "erasure",
            RecordType.CHILD,
            1,
            {PSEUDONYMISE_RECORDS.name, PSEUDONYMISE_LINKAGE_KEYS.name},
        ),
        (
            "objection",
            RecordType.SPINE_PERSON,
            1,
            {PSEUDONYMISE_RECORDS.name, PSEUDONYMISE_LINKAGE_KEYS.name},
        ),
        (
            "opt-out",
            RecordType.SPINE_PERSON,
            0,
            {PSEUDONYMISE_RECORDS.name, PSEUDONYMISE_LINKAGE_KEYS.name},
        ),
        ("objection", RecordType.CASE, 0, {PSEUDONYMISE_RECORDS.name}),
    ],
)
def test_an_objection_shreds_the_vault_and_follows_the_record_under_its_token(
    engine: Engine,
    pseudonymiser: Pseudonymiser,
    kind: str,
    record_type: RecordType,
    erased: int,
    topics: set[str],
) -> None:
    record = canary_records("-obj")[record_type]
    received = RECORD_RECEIVED_EVENTS[record_type](record=record, delivery_id="dlv-1")
    kept: list[dict] = []
    box = Vault({"k1": KeyEncryptionKey.generate("k1")}, "k1")
    published = pseudonymise(pseudonymiser, received, uuid.uuid4(), box, kept)
    with Session(engine) as session, session.begin():
        Vault.keep(session, kept)
    token = Envelope.from_bytes(published[0].value).data["record_token"]
    held = _versions(engine, token)

    objection = _objection(kind, record_type, record.record_id, record.source.value)
    input_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        messages = object_to(session, pseudonymiser, objection, input_id)
    with Session(engine) as session, session.begin():
        again = object_to(session, pseudonymiser, objection, input_id)

    assert held == (1 if record_type is not RecordType.CASE else 0)
    assert _versions(engine, token) == held - erased
    # Registered once (the replay adds nothing), unless an opt-out, with no identifier.
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(erasures))]
    if kind == "opt-out":
        assert rows == []
    else:
        assert [(r["record_token"], r["receipt_id"], r["kind"]) for r in rows] == [
            (token, str(objection.receipt_id), kind)
        ]
        assert record.record_id not in repr(rows)
    assert {m.topic for m in messages} == topics
    for message in messages:
        assert message.key == token
        envelope = Envelope.from_bytes(message.value)
        assert envelope.type == "pseudonymise.record-objected.v1"
        assert envelope.data["record_token"] == token
        assert envelope.data["receipt_id"] == str(objection.receipt_id)
        assert envelope.data["erased_versions"] == erased
        assert record.record_id.encode() not in message.value
    # A replay: the same events (consumers skip them by id), nothing more erased.
    assert [Envelope.from_bytes(m.value).event_id for m in again] == [
        Envelope.from_bytes(m.value).event_id for m in messages
    ]


def test_a_token_erased_once_is_suppressed_as_erased_whatever_else_was_asked(
    engine: Engine, pseudonymiser: Pseudonymiser
) -> None:
    record = canary_records("-sup")[RecordType.CHILD]
    token = pseudonymiser.record_token(record.source.value, "child", record.record_id)
    other = pseudonymiser.record_token(record.source.value, "child", record.record_id + "-2")
    for kind in ("objection", "erasure", "objection"):
        event = _objection(kind, RecordType.CHILD, record.record_id, record.source.value)
        with Session(engine) as session, session.begin():
            object_to(session, pseudonymiser, event, uuid.uuid4())
    event = _objection("objection", RecordType.CHILD, record.record_id + "-2", "cafcass-cymru")
    with Session(engine) as session, session.begin():
        object_to(session, pseudonymiser, event, uuid.uuid4())

    with Session(engine) as session:
        assert suppression_reasons(session, [token, other, "not-a-token"]) == {
            token: "erased",
            other: "objected",
        }
        assert suppression_reasons(session, []) == {}
