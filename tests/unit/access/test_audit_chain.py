"""The keyed hash chain and signed checkpoints, without a database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from services.access.domain.audit import (
    GENESIS,
    AuditEntry,
    Checkpoint,
    entry_hash,
    sign_checkpoint,
    verify_chain,
)

KEY = b"a" * 32
CP_KEY = b"c" * 32
AT = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int, key: bytes = KEY) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        e = AuditEntry(
            seq, AT, "alice", "extract.download", "ok", "extract", f"e{seq}", "p", {}, prev
        )
        e = dataclasses.replace(e, hash=entry_hash(key, e))
        out.append(e)
        prev = e.hash
    return out


def checkpoint(e: AuditEntry, key: bytes = CP_KEY) -> Checkpoint:
    cp = Checkpoint(e.seq, e.hash, AT)
    return dataclasses.replace(cp, signature=sign_checkpoint(key, cp))


def verify(entries: list[AuditEntry], cps: list[Checkpoint]) -> list[str]:
    return verify_chain(entries, cps, audit_key=KEY, checkpoint_key=CP_KEY).problems


def test_an_intact_chain_with_its_checkpoint_verifies() -> None:
    entries = chain(5)
    assert verify(entries, [checkpoint(entries[-1])]) == []


def test_a_chain_rebuilt_without_the_key_does_not_verify() -> None:
    forged = chain(5, key=b"guessed-key-guessed-key-guessed!")
    assert any("modified" in p for p in verify(forged, []))


def test_truncation_is_only_visible_against_a_checkpoint() -> None:
    entries = chain(5)
    newest = checkpoint(entries[-1])
    assert verify(entries[:3], []) == []  # a shorter chain is consistent on its own
    assert any("newest rows were deleted" in p for p in verify(entries[:3], [newest]))


def test_a_checkpoint_signed_with_the_audit_key_is_refused() -> None:
    entries = chain(3)
    assert any("bad signature" in p for p in verify(entries, [checkpoint(entries[-1], KEY)]))
