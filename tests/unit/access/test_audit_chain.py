"""The signed hash chain and its checkpoints, without a database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.access.domain.audit import (
    GENESIS,
    AuditEntry,
    AuditSigner,
    Checkpoint,
    dev_signing_key,
    entry_hash,
    is_dev_key,
    load_private_key,
    load_public_key,
    public_key_pem,
    verify_chain,
)

SIGNER = AuditSigner(Ed25519PrivateKey.generate())
AT = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int, signer: AuditSigner = SIGNER) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        e = AuditEntry(
            seq, AT, "alice", "extract.download", "ok", "extract", f"e{seq}", "p", {}, prev
        )
        digest = entry_hash(e)
        e = dataclasses.replace(e, hash=digest, signature=signer.sign_entry(digest))
        out.append(e)
        prev = e.hash
    return out


def checkpoint(e: AuditEntry, signer: AuditSigner = SIGNER) -> Checkpoint:
    cp = Checkpoint(e.seq, e.hash, AT)
    return dataclasses.replace(cp, signature=signer.sign_checkpoint(cp))


def verify(entries: list[AuditEntry], cps: list[Checkpoint], **kw: object) -> list[str]:
    head = (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)
    options: dict[str, object] = {"public_key": SIGNER.public_key, "head": head, **kw}
    return verify_chain(entries, cps, **options).problems  # type: ignore[arg-type]


def test_an_intact_chain_with_its_checkpoint_verifies() -> None:
    entries = chain(5)
    assert verify(entries, [checkpoint(entries[-1])]) == []


def test_anyone_can_recompute_the_chain_but_nobody_without_the_key_can_sign_it() -> None:
    entries = chain(5)
    forged = dataclasses.replace(entries[2], actor="mallory")
    forged = dataclasses.replace(forged, hash=entry_hash(forged))  # a consistent hash
    problems = verify([*entries[:2], forged, *entries[3:]], [checkpoint(entries[-1])])
    assert "row 3 is not signed by the service's key" in problems
    assert "row 4 does not link to the row before it" in problems


def test_a_chain_signed_with_another_key_does_not_verify() -> None:
    other = AuditSigner(dev_signing_key())
    entries = chain(3, other)
    problems = verify(entries, [checkpoint(entries[-1], other)])
    assert sum("not signed by the service's key" in p for p in problems) == 3
    assert "checkpoint at row 3 has a bad signature" in problems


def test_truncation_is_visible_against_a_checkpoint_and_uncovered_rows_are_reported() -> None:
    entries = chain(5)
    newest = checkpoint(entries[-1])
    assert any("newest rows were deleted" in p for p in verify(entries[:3], [newest]))
    result = verify_chain(
        entries, [checkpoint(entries[1])], public_key=SIGNER.public_key, head=(5, entries[-1].hash)
    )
    assert result.unanchored_from == 3
    assert result.problems == [result.uncovered]


def test_an_empty_log_and_a_log_without_checkpoints_are_refused() -> None:
    assert any("log is empty" in p for p in verify([], []))
    assert verify(chain(2), []) == ["there is no signed checkpoint: the checkpoints were deleted"]


def test_the_head_must_name_the_last_row() -> None:
    entries = chain(4)
    cps = [checkpoint(entries[-1])]
    assert verify(entries, cps, head=(3, entries[2].hash)) == [
        "the head names row 3 but the log ends at row 4"
    ]
    assert any("head row" in p for p in verify(entries, cps, head=None))


def test_an_exported_checkpoint_shows_what_the_store_lost() -> None:
    entries = chain(6)
    store = [checkpoint(e) for e in entries[:4]]
    exported = [checkpoint(e) for e in entries]
    problems = verify(entries[:4], store, exported=exported)
    assert "checkpoint at row 5 was exported but is gone from the store" in problems
    assert any("newest rows were deleted" in p for p in problems)


def test_the_development_key_is_refused_unless_in_dev() -> None:
    dev = AuditSigner(dev_signing_key())
    entries = chain(2, dev)
    head = (2, entries[-1].hash)
    cps = [checkpoint(entries[-1], dev)]
    refused = verify_chain(entries, cps, public_key=dev.public_key, head=head).problems
    assert len(refused) == 1 and "development key" in refused[0]
    allowed = verify_chain(entries, cps, public_key=dev.public_key, head=head, allow_dev_key=True)
    assert allowed.ok
    assert is_dev_key(dev.public_key) and not is_dev_key(SIGNER.public_key)


def test_keys_read_back_from_pem_and_raw_bytes() -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = public_key_pem(key.public_key()).encode()
    for data in (pem, raw):
        assert public_key_pem(load_private_key(data).public_key()).encode() == public
    assert public_key_pem(load_public_key(public)).encode() == public
