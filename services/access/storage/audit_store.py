"""The audit trail on SQL: append inside the caller's transaction, checkpoint after commit.

Appends lock the single head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so concurrent requests extend one chain.
After a transaction that appended commits, the new head is signed with the checkpoint key
and written to the checkpoint store, which should live apart from the log (another database
or at least another role that can only insert); see docs/access.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from services.access.domain.audit import (
    AuditEntry,
    Checkpoint,
    VerificationResult,
    entry_hash,
    sign_checkpoint,
    verify_chain,
)
from services.access.storage.models import AuditCheckpointRow, AuditHeadRow, AuditLogRow

__all__ = ["AuditTrail"]

_log = logging.getLogger("fjo.access.audit")
_PENDING = "fjo_access_audit_head"


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class AuditTrail:
    """Appends hash-chained entries and keeps signed checkpoints of the chain's head."""

    def __init__(
        self, *, audit_key: bytes, checkpoint_key: bytes, checkpoint_engine: Engine
    ) -> None:
        if audit_key == checkpoint_key:
            raise ValueError("the audit and checkpoint keys must differ")
        self._audit_key = audit_key
        self._checkpoint_key = checkpoint_key
        self._checkpoint_engine = checkpoint_engine

    def install(self, factory: sessionmaker[Session]) -> None:
        """Write a checkpoint after every commit of ``factory``'s sessions that appended."""
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_rollback", self._after_rollback)

    def append(
        self,
        session: Session,
        *,
        actor: str | None,
        action: str,
        outcome: str = "ok",
        object_type: str | None = None,
        object_id: str | None = None,
        project_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one entry to the chain inside ``session``'s transaction."""
        head = session.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()
        # Round-trip the detail through JSON now so that what is hashed is what is stored.
        detail_text = json.dumps(dict(detail or {}), sort_keys=True, default=str)
        entry = AuditEntry(
            seq=head.seq + 1,
            at=datetime.fromisoformat(_now_text()),
            actor=actor,
            action=action,
            outcome=outcome,
            object_type=object_type,
            object_id=object_id,
            project_id=project_id,
            detail=json.loads(detail_text),
            prev_hash=head.hash,
        )
        digest = entry_hash(self._audit_key, entry)
        session.add(
            AuditLogRow(
                seq=entry.seq,
                at=entry.at.isoformat(timespec="microseconds"),
                actor=actor,
                action=action,
                outcome=outcome,
                object_type=object_type,
                object_id=object_id,
                project_id=project_id,
                detail=detail_text,
                prev_hash=entry.prev_hash,
                hash=digest,
            )
        )
        head.seq = entry.seq
        head.hash = digest
        session.flush()
        session.info[_PENDING] = (entry.seq, digest)
        return AuditEntry(**{**_fields(entry), "hash": digest})

    def checkpoint(self, seq: int, digest: str) -> Checkpoint:
        """Sign ``(seq, hash)`` and store it in the checkpoint store."""
        cp = Checkpoint(seq=seq, entry_hash=digest, at=datetime.fromisoformat(_now_text()))
        signature = sign_checkpoint(self._checkpoint_key, cp)
        with self._checkpoint_engine.begin() as conn:
            existing = conn.execute(
                select(AuditCheckpointRow.seq).where(AuditCheckpointRow.seq == seq)
            ).first()
            if existing is None:
                conn.execute(
                    insert(AuditCheckpointRow).values(
                        seq=seq,
                        entry_hash=digest,
                        at=cp.at.isoformat(timespec="microseconds"),
                        signature=signature,
                    )
                )
        return Checkpoint(seq=seq, entry_hash=digest, at=cp.at, signature=signature)

    def checkpoint_head(self, engine: Engine) -> Checkpoint | None:
        """Checkpoint the chain's current head (``fjo audit checkpoint``, and after recovery)."""
        with engine.connect() as conn:
            head = conn.execute(select(AuditHeadRow.seq, AuditHeadRow.hash)).first()
        if head is None or head.seq == 0:
            return None
        return self.checkpoint(head.seq, head.hash)

    def verify(self, engine: Engine) -> VerificationResult:
        """Check the whole chain against the signed checkpoints."""
        # Checkpoints first, in their own connection (on SQLite every connection takes the
        # write lock at BEGIN): entries appended meanwhile only make the log longer.
        with self._checkpoint_engine.connect() as cconn:
            checkpoints = [
                Checkpoint(
                    seq=r.seq,
                    entry_hash=r.entry_hash,
                    at=datetime.fromisoformat(r.at),
                    signature=r.signature,
                )
                for r in cconn.execute(
                    select(
                        AuditCheckpointRow.seq,
                        AuditCheckpointRow.entry_hash,
                        AuditCheckpointRow.at,
                        AuditCheckpointRow.signature,
                    ).order_by(AuditCheckpointRow.seq)
                )
            ]
        with engine.connect() as conn:
            return verify_chain(
                _iter_entries(conn),
                checkpoints,
                audit_key=self._audit_key,
                checkpoint_key=self._checkpoint_key,
            )

    def _after_commit(self, session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if pending is None:
            return
        try:
            self.checkpoint(*pending)
        except Exception as exc:
            # The entry is committed; the next checkpoint will cover it. Say so loudly.
            _log.error("audit checkpoint failed", extra={"error_type": type(exc).__name__})

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_PENDING, None)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}


def _iter_entries(conn: Any) -> Iterator[AuditEntry]:
    rows = conn.execution_options(yield_per=1000).execute(
        select(AuditLogRow.__table__).order_by(AuditLogRow.seq)
    )
    for r in rows:
        yield AuditEntry(
            seq=r.seq,
            at=datetime.fromisoformat(r.at),
            actor=r.actor,
            action=r.action,
            outcome=r.outcome,
            object_type=r.object_type,
            object_id=r.object_id,
            project_id=r.project_id,
            detail=json.loads(r.detail),
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
