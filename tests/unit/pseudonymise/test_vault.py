"""The identifier vault: envelope encryption, what is kept, re-encoding, KEK rotation, erasure."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS
from contracts.records import PERSON_RECORD_TYPES, RecordType
from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS
from fjo.leakscan import find_leaks
from services.pseudonymise.domain import KeyRing, OnsPostcodeLookup, Pseudonymiser
from services.pseudonymise.domain.vault import (
    KeyEncryptionKey,
    VaultError,
    open_sealed,
    rewrap,
    seal,
)
from services.pseudonymise.handlers import pseudonymise
from services.pseudonymise.reencode import reencode
from services.pseudonymise.vault import Vault, metadata, vault
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.topics import topic_specs
from tests.canaries import CANARIES, canary_records
from tests.unit.pseudonymise.conftest import fixed_key

AAD = b"token\x001\x00event"


def test_a_sealed_item_opens_only_with_its_kek_and_its_own_name() -> None:
    kek = KeyEncryptionKey.generate("k1")
    sealed = seal(kek, b"identifiers", aad=AAD)
    assert b"identifiers" not in sealed.ciphertext + sealed.wrapped_key
    assert open_sealed({"k1": kek}, sealed, aad=AAD) == b"identifiers"
    with pytest.raises(VaultError):  # moved to another row
        open_sealed({"k1": kek}, sealed, aad=b"other\x001\x00event")
    with pytest.raises(VaultError):  # another KEK under the same id
        open_sealed({"k1": KeyEncryptionKey.generate("k1")}, sealed, aad=AAD)
    with pytest.raises(VaultError, match="not loaded"):
        open_sealed({}, sealed, aad=AAD)
    flipped = bytes([sealed.ciphertext[0]]) + bytes([sealed.ciphertext[1] ^ 1])
    tampered = type(sealed)("k1", sealed.wrapped_key, flipped + sealed.ciphertext[2:])
    with pytest.raises(VaultError):
        open_sealed({"k1": kek}, tampered, aad=AAD)


def test_two_seals_of_the_same_identifiers_share_nothing() -> None:
    kek = KeyEncryptionKey.generate("k1")
    one, two = seal(kek, b"same", aad=AAD), seal(kek, b"same", aad=AAD)
    assert one.ciphertext != two.ciphertext and one.wrapped_key != two.wrapped_key


def test_rewrapping_changes_the_wrapped_key_only() -> None:
    old, new = KeyEncryptionKey.generate("k1"), KeyEncryptionKey.generate("k2")
    sealed = seal(old, b"identifiers", aad=AAD)
    moved = rewrap({"k1": old}, sealed, new, aad=AAD)
    assert moved.kek_id == "k2" and moved.ciphertext == sealed.ciphertext
    assert open_sealed({"k2": new}, moved, aad=AAD) == b"identifiers"
    with pytest.raises(VaultError):  # the old KEK no longer opens it
        open_sealed({"k2": old}, moved, aad=AAD)


def test_a_kek_file_must_hold_random_material(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    path.write_text("changeme-changeme-changeme-changeme")
    with pytest.raises(ValueError):
        KeyEncryptionKey.from_file("k1", path)
    path.write_bytes(uuid.uuid4().bytes)  # 16 bytes: too short
    with pytest.raises(ValueError, match="at least 32"):
        KeyEncryptionKey.from_file("k1", path)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    metadata.create_all(engine)
    return engine


def _keep(engine: Engine, box: Vault, pseudonymiser: Pseudonymiser, suffix: str) -> dict:
    """Pseudonymise one canary record of every kind as the handler does; the messages."""
    out = {}
    kept: list[dict] = []
    for kind, record in canary_records(suffix).items():
        event = RECORD_RECEIVED_EVENTS[kind](record=record, delivery_id="dlv-1")
        out[kind] = (event, pseudonymise(pseudonymiser, event, uuid.uuid4(), box, kept))
    with Session(engine) as session, session.begin():
        Vault.keep(session, kept)
        Vault.keep(session, kept)  # a redelivered run keeps nothing twice
    return out


def _linkage(messages) -> dict[str, dict]:
    envelopes = [Envelope.from_bytes(m.value) for m in messages]
    return {
        e.data["record_token"]: e.data
        for e in envelopes
        if e.type.startswith("pseudonymise.linkage-keys")
    }


def test_the_vault_keeps_person_records_identifiers_sealed_and_nothing_else(
    engine: Engine, postcodes: OnsPostcodeLookup
) -> None:
    box = Vault({"k1": KeyEncryptionKey.generate("k1")}, "k1")
    v1 = Pseudonymiser(KeyRing.single(fixed_key("v1")), postcodes)
    _keep(engine, box, v1, "-a")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(vault))]
    assert {r["record_type"] for r in rows} == {t.value for t in PERSON_RECORD_TYPES}
    assert len(rows) == len(PERSON_RECORD_TYPES)
    dump = json.dumps(rows, default=lambda b: b.hex() if isinstance(b, bytes) else str(b))
    assert find_leaks(dump, CANARIES) == []  # sealed: no identifier in clear
    child = next(box.open(r) for r in rows if r["record_type"] == RecordType.CHILD.value)
    # identifiers only: no content field, no reference to another record
    assert "surname" in child.fields and "date_of_birth" in child.fields
    assert "case_id" not in child.fields and "ethnicity" not in child.fields


def test_reencoding_from_the_vault_gives_the_keys_a_full_record_gives_under_the_new_version(
    engine: Engine, postcodes: OnsPostcodeLookup, tmp_path: Path
) -> None:
    box = Vault({"k1": KeyEncryptionKey.generate("k1")}, "k1")
    ring = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2"), make_current=False)
    first = _keep(engine, box, Pseudonymiser(ring, postcodes), "-b")
    expected = {}
    v2 = Pseudonymiser(ring, postcodes, version=2)
    for event, _messages in first.values():
        # what a replay of the raw topic would have published under v2
        expected |= _linkage(pseudonymise(v2, event, uuid.uuid4()))
    bus = EmbeddedBus(f"sqlite:///{tmp_path / 'bus.db'}")
    bus.create_topics(topic_specs([PSEUDONYMISE_LINKAGE_KEYS]))
    producer = bus.producer()
    sessions = sessionmaker(engine)
    seen: list[tuple[str, int]] = []
    result = reencode(
        sessions, box, v2, producer, page=1, on_progress=lambda p, n: seen.append((p, n))
    )
    again = reencode(sessions, box, v2, producer)  # resumes after the end: publishes nothing new
    producer.flush()
    consumer = bus.consumer("check", [PSEUDONYMISE_LINKAGE_KEYS.name])
    published = [m for _ in range(5) for m in consumer.poll(timeout_s=0.2)]
    consumer.close()
    bus.close()

    got = _linkage(published)
    assert result.published == {"records": 2, "spine": 1} == again.published
    assert len(published) == 3
    assert seen[-1] == ("spine", 1) and ("records", 1) in seen
    assert set(got) == set(_linkage(m for _e, ms in first.values() for m in ms))  # same names
    assert {d["key_version"] for d in got.values()} == {2}
    for token, data in got.items():
        assert {k: v for k, v in data.items()} == expected[token]
    # spine people last: link re-decides records when their spine is re-encoded
    assert Envelope.from_bytes(published[-1].value).data["record_type"] == "spine-person"


def test_a_kek_rotation_rewraps_every_data_key_and_the_old_kek_is_then_not_needed(
    engine: Engine, postcodes: OnsPostcodeLookup
) -> None:
    old, new = KeyEncryptionKey.generate("k1"), KeyEncryptionKey.generate("k2")
    _keep(
        engine,
        Vault({"k1": old}, "k1"),
        Pseudonymiser(KeyRing.single(fixed_key("v1")), postcodes),
        "-c",
    )
    with engine.connect() as conn:
        before = {r.record_token: r.ciphertext for r in conn.execute(select(vault))}
    with Session(engine) as session:
        assert Vault({"k1": old, "k2": new}, "k2").rewrap_all(session) == len(before)
        assert Vault({"k1": old, "k2": new}, "k2").rewrap_all(session) == 0
    only_new = Vault({"k2": new}, "k2")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(vault))]
    assert {r["kek_id"] for r in rows} == {"k2"}
    assert {r["record_token"]: r["ciphertext"] for r in rows} == before  # payloads untouched
    assert all(only_new.open(r).fields for r in rows)


def test_erasing_a_person_shreds_every_version_and_audits_without_identifiers(
    engine: Engine, postcodes: OnsPostcodeLookup, caplog: pytest.LogCaptureFixture
) -> None:
    box = Vault({"k1": KeyEncryptionKey.generate("k1")}, "k1")
    v1 = Pseudonymiser(KeyRing.single(fixed_key("v1")), postcodes)
    kept = _keep(engine, box, v1, "-d")
    spine = _linkage(kept[RecordType.SPINE_PERSON][1])
    (token,) = spine
    with caplog.at_level(logging.INFO, logger="fjo.pseudonymise.vault"), Session(engine) as session:
        assert Vault.erase(session, token, reason="erasure-request") == 1
        session.commit()
        assert Vault.erase(session, token, reason="erasure-request") == 0
    with engine.connect() as conn:
        left = {r.record_type for r in conn.execute(select(vault))}
    assert left == {RecordType.CHILD.value, RecordType.ADULT_PARTY.value}
    (line, _again) = [r for r in caplog.records if r.getMessage() == "vault erase"]
    assert line.__dict__["audit"] == "vault.erase" and line.__dict__["record_token"] == token
    assert line.__dict__["versions"] == 1 and line.__dict__["reason"] == "erasure-request"
    assert find_leaks(json.dumps({k: str(v) for k, v in line.__dict__.items()}), CANARIES) == []
