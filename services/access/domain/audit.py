"""The tamper-evident audit trail: a keyed hash chain plus signed checkpoints kept apart.

Each entry's hash is an HMAC (audit key) over its sequence number, its content and the
previous entry's hash. Changing, inserting or deleting a row breaks the chain, and nobody
without the key can rebuild it. Deleting the newest rows leaves a valid but shorter chain, so
the head of the chain is also written, signed with a second key, to a checkpoint store kept
apart from the log: verification fails when the log ends before the newest checkpoint or
disagrees with any checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "GENESIS",
    "AuditEntry",
    "Checkpoint",
    "VerificationResult",
    "canonical",
    "entry_hash",
    "sign_checkpoint",
    "verify_chain",
]

GENESIS = "0" * 64


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
    """The chain's head at some moment, signed with the checkpoint key."""

    seq: int
    entry_hash: str
    at: datetime
    signature: str = ""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(key: bytes, entry: AuditEntry) -> str:
    message = entry.prev_hash.encode() + b"|" + canonical(entry.content())
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_checkpoint(key: bytes, checkpoint: Checkpoint) -> str:
    message = canonical(
        {"seq": checkpoint.seq, "hash": checkpoint.entry_hash, "at": checkpoint.at.isoformat()}
    )
    return hmac.new(key, b"checkpoint|" + message, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class VerificationResult:
    ok: bool
    entries: int
    checkpoints: int
    problems: list[str] = field(default_factory=list)

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
    audit_key: bytes,
    checkpoint_key: bytes,
    max_problems: int = 50,
) -> VerificationResult:
    """Check every link of the chain and every checkpoint; report what is wrong and where."""
    problems: list[str] = []
    by_seq: dict[int, str] = {}
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                problems.append(f"rows {expected_seq}..{entry.seq - 1} are missing")
            else:
                problems.append(f"row {entry.seq} is out of sequence (expected {expected_seq})")
        if entry.prev_hash != expected_prev:
            problems.append(f"row {entry.seq} does not link to the row before it")
        if not hmac.compare_digest(entry_hash(audit_key, entry), entry.hash):
            problems.append(f"row {entry.seq} was modified (hash mismatch)")
        by_seq[entry.seq] = entry.hash
        expected_prev = entry.hash
        expected_seq = entry.seq + 1
        if len(problems) >= max_problems:
            break
    last_seq = expected_seq - 1

    n_checkpoints = 0
    newest = 0
    for cp in checkpoints:
        n_checkpoints += 1
        if not hmac.compare_digest(sign_checkpoint(checkpoint_key, cp), cp.signature):
            problems.append(f"checkpoint at row {cp.seq} has a bad signature")
            continue
        newest = max(newest, cp.seq)
        if cp.seq in by_seq and not hmac.compare_digest(by_seq[cp.seq], cp.entry_hash):
            problems.append(f"row {cp.seq} differs from its signed checkpoint")
        elif cp.seq not in by_seq and cp.seq <= last_seq:
            problems.append(f"row {cp.seq} named by a checkpoint is missing")
    if newest > last_seq:
        problems.append(
            f"the log ends at row {last_seq} but a signed checkpoint names row {newest}: "
            "the newest rows were deleted"
        )
    return VerificationResult(
        ok=not problems, entries=count, checkpoints=n_checkpoints, problems=problems
    )
