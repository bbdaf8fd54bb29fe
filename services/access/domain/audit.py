"""The tamper-evident audit trail: a hash chain of signed entries, plus signed checkpoints
kept apart from the log.

Each entry's hash is SHA-256 over the previous entry's hash and its own content (sequence
number, time, actor, action, outcome, object, detail), and the service signs that hash with
its Ed25519 key. Changing, inserting, reordering or deleting a row breaks the chain, and
nobody without the private key can sign a replacement; anyone with the public key alone
(an auditor, the data controller) checks all of it. Deleting the newest rows leaves a
valid but shorter chain, so the head of the chain is also written, signed, to a checkpoint
store kept apart from the log, and can be exported to storage outside any database:
verification fails when the log ends before a checkpoint, when rows are not covered by any
checkpoint, when the head row disagrees with the log, when the log is empty, when there are
no checkpoints, and when the key is the publicly known development key outside dev.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "DEV_SIGNING_SECRET",
    "GENESIS",
    "AuditEntry",
    "AuditSigner",
    "Checkpoint",
    "VerificationResult",
    "canonical",
    "dev_signing_key",
    "entry_hash",
    "is_dev_key",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "verify_chain",
]

GENESIS = "0" * 64
DEV_SIGNING_SECRET = b"dev-insecure-access-audit-signing-key"
"""The seed of the development signing key: public on purpose, so refused outside dev."""

_ENTRY = b"fjo.access.audit.entry.v2|"
_CHECKPOINT = b"fjo.access.audit.checkpoint.v2|"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row. ``detail`` holds counts and object ids, never a data subject's identifier."""

    seq: int
    at: datetime
    actor: str | None
    action: str
    outcome: str
    object_type: str | None
    object_id: str | None
    project_id: str | None
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str = ""
    signature: str | None = None

    def content(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "project_id": self.project_id,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at some moment, signed with the service's key."""

    seq: int
    entry_hash: str
    at: datetime
    signature: str = ""

    def message(self) -> bytes:
        return _CHECKPOINT + canonical(
            {"seq": self.seq, "hash": self.entry_hash, "at": self.at.isoformat()}
        )

    def as_dict(self) -> dict[str, Any]:
        """The exported form (one JSON line per checkpoint, ``fjo audit export-checkpoints``)."""
        return {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "at": self.at.isoformat(),
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            seq=int(data["seq"]),
            entry_hash=str(data["entry_hash"]),
            at=datetime.fromisoformat(str(data["at"])),
            signature=str(data["signature"]),
        )


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 of the previous hash and the entry's content: anyone can recompute it."""
    message = entry.prev_hash.encode() + b"|" + canonical(entry.content())
    return hashlib.sha256(message).hexdigest()


def dev_signing_key() -> Ed25519PrivateKey:
    """The development key: derived from a published constant, so anyone can sign with it."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(DEV_SIGNING_SECRET).digest())


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def is_dev_key(key: Ed25519PublicKey) -> bool:
    return hmac.compare_digest(_raw(key), _raw(dev_signing_key().public_key()))


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS #8) or its 32 raw bytes; ValueError otherwise."""
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("the audit signing key is not an Ed25519 private key in PEM") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key is not an Ed25519 key")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or its 32 raw bytes."""
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError("the audit public key is not an Ed25519 public key in PEM") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the audit public key is not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class AuditSigner:
    """Signs entries and checkpoints with the service's private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()

    def sign_entry(self, digest: str) -> str:
        return self._key.sign(_ENTRY + digest.encode()).hex()

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        return self._key.sign(checkpoint.message()).hex()


def _valid(key: Ed25519PublicKey, signature: str | None, message: bytes) -> bool:
    if not signature:
        return False
    try:
        key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(slots=True)
class VerificationResult:
    ok: bool
    entries: int
    checkpoints: int
    problems: list[str] = field(default_factory=list)
    unanchored_from: int | None = None
    """The first row no signed checkpoint covers (only rows after the newest one)."""
    uncovered: str | None = None
    """The problem that reports those rows (the only one ``fjo audit checkpoint`` may fix)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "problems": list(self.problems),
        }


def verify_chain(
    entries: Iterable[AuditEntry],
    checkpoints: Iterable[Checkpoint],
    *,
    public_key: Ed25519PublicKey,
    head: tuple[int, str] | None,
    exported: Iterable[Checkpoint] = (),
    allow_dev_key: bool = False,
    max_problems: int = 50,
) -> VerificationResult:
    """Check every row, the head, every checkpoint (stored and exported) and their coverage;
    report what is wrong and where. ``head`` is the head row's ``(seq, hash)``."""
    problems: list[str] = []
    if is_dev_key(public_key) and not allow_dev_key:
        problems.append(
            "the trail is verified against the publicly known development key, which anyone "
            "can sign with; outside dev use the service's own key"
        )
    by_seq: dict[int, str] = {}
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                problems.append(f"rows {expected_seq}..{entry.seq - 1} are missing")
            else:
                problems.append(f"row {entry.seq} is out of sequence (expected {expected_seq})")
        if entry.prev_hash != expected_prev:
            problems.append(f"row {entry.seq} does not link to the row before it")
        if not hmac.compare_digest(entry_hash(entry), entry.hash):
            problems.append(f"row {entry.seq} was modified (hash mismatch)")
        elif not _valid(public_key, entry.signature, _ENTRY + entry.hash.encode()):
            problems.append(f"row {entry.seq} is not signed by the service's key")
        by_seq[entry.seq] = entry.hash
        expected_prev, expected_seq = entry.hash, entry.seq + 1
        if len(problems) >= max_problems:
            break
    last_seq = expected_seq - 1
    if count == 0:
        problems.append("the audit log is empty: a trail starts with its genesis entry")

    if head is None:
        problems.append("the head row of the chain is missing")
    elif head[0] != last_seq:
        problems.append(f"the head names row {head[0]} but the log ends at row {last_seq}")
    elif count and not hmac.compare_digest(head[1], expected_prev):
        problems.append(f"the head's hash differs from row {last_seq}")

    stored = {cp.seq: cp for cp in checkpoints}
    outside = {cp.seq: cp for cp in exported}
    for seq, cp in outside.items():
        if seq not in stored:
            problems.append(f"checkpoint at row {seq} was exported but is gone from the store")
        elif stored[seq] != cp:
            problems.append(f"checkpoint at row {seq} differs from its exported copy")
    newest = 0
    for cp in (*stored.values(), *(cp for s, cp in outside.items() if s not in stored)):
        if not _valid(public_key, cp.signature, cp.message()):
            problems.append(f"checkpoint at row {cp.seq} has a bad signature")
            continue
        newest = max(newest, cp.seq)
        if cp.seq in by_seq and not hmac.compare_digest(by_seq[cp.seq], cp.entry_hash):
            problems.append(f"row {cp.seq} differs from its signed checkpoint")
        elif cp.seq not in by_seq and cp.seq <= last_seq:
            problems.append(f"row {cp.seq} named by a checkpoint is missing")
    n_checkpoints = len(stored.keys() | outside.keys())
    if count and not n_checkpoints:
        problems.append("there is no signed checkpoint: the checkpoints were deleted")
    unanchored: int | None = None
    uncovered: str | None = None
    if newest > last_seq:
        problems.append(
            f"the log ends at row {last_seq} but a signed checkpoint names row {newest}: "
            "the newest rows were deleted"
        )
    elif n_checkpoints and newest < last_seq:
        unanchored = newest + 1
        uncovered = (
            f"rows {unanchored}..{last_seq} are not covered by a signed checkpoint (theirs were "
            "deleted, or a checkpoint failed: `fjo audit checkpoint` signs the head)"
        )
        problems.append(uncovered)
    return VerificationResult(
        ok=not problems,
        entries=count,
        checkpoints=n_checkpoints,
        problems=problems,
        unanchored_from=unanchored,
        uncovered=uncovered,
    )
