"""The audit trail on SQL: append inside the caller's transaction, checkpoint after commit.

Appends lock the single head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so concurrent requests extend one chain.
Each entry is signed as it is written. After a transaction that appended commits, the new
head is signed and written to the checkpoint store, which should live apart from the log
(another database, whose role may only insert), and is exported from there to storage
outside any database (``fjo audit export-checkpoints``); see docs/access.md. The migrations
make the tables append-only (triggers), and ``grants.audit_grants`` takes UPDATE and DELETE
away from the service's role on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, event, insert, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from services.access.domain.audit import (
    AuditEntry,
    AuditSigner,
    Checkpoint,
    VerificationResult,
    entry_hash,
    verify_chain,
)
from services.access.storage.models import AuditCheckpointRow, AuditHeadRow, AuditLogRow

__all__ = ["AuditTrail", "TrailNotSound"]

_log = logging.getLogger("fjo.access.audit")
_PENDING = "fjo_access_audit_head"
_SAVED = "fjo_access_audit_head_at_savepoints"
_CHECKPOINT_GRACE_S = 0.5


class TrailNotSound(RuntimeError):
    """The trail does not verify: signing its head now would vouch for a tampered log."""


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class AuditTrail:
    """Appends signed, hash-chained entries and keeps signed checkpoints of the chain's head.

    Without a signer the trail can only be verified (a third party holding the public key).
    """

    def __init__(
        self,
        *,
        signer: AuditSigner | None,
        checkpoint_engine: Engine,
        public_key: Ed25519PublicKey | None = None,
        allow_dev_key: bool = False,
    ) -> None:
        if signer is None and public_key is None:
            raise ValueError("an audit trail needs a signing key or a public key to verify with")
        self._signer = signer
        self._checkpoint_engine = checkpoint_engine
        self.public_key: Ed25519PublicKey = (
            public_key if public_key is not None else signer.public_key  # type: ignore[union-attr]
        )
        self._allow_dev_key = allow_dev_key

    def install(self, factory: sessionmaker[Session]) -> None:
        """Write a checkpoint after every commit of ``factory``'s sessions that appended.

        Only the outermost transaction's commit counts. SQLAlchemy also fires
        ``after_commit`` when a SAVEPOINT is released (the workers handle each record in
        one): checkpointing then would sign a head that is not committed yet (and might be
        rolled back), and, on SQLite, its write would wait out the busy timeout behind the
        session's own open transaction ("database is locked"). A savepoint rolled back
        takes its appends with it, so the pending head goes back to what it was when the
        savepoint began."""
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_transaction_create", self._after_transaction_create)
        event.listen(factory, "after_rollback", self._after_rollback)
        event.listen(factory, "after_transaction_end", self._after_transaction_end)

    def _signing(self) -> AuditSigner:
        if self._signer is None:
            raise RuntimeError("this audit trail holds no signing key: it can only verify")
        return self._signer

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
        """Add one signed entry to the chain inside ``session``'s transaction."""
        signer = self._signing()
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
        digest = entry_hash(entry)
        signature = signer.sign_entry(digest)
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
                signature=signature,
            )
        )
        head.seq = entry.seq
        head.hash = digest
        session.flush()
        session.info[_PENDING] = (entry.seq, digest)
        return AuditEntry(**{**_fields(entry), "hash": digest, "signature": signature})

    def open(self, factory: sessionmaker[Session]) -> None:
        """Start the trail with its genesis entry if it has none yet (service start-up).

        A trail is never legitimately empty after that, so an empty log reads as a wipe.
        """
        with factory.begin() as session:
            head = session.execute(
                select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
            ).scalar_one()
            if head.seq == 0:
                self.append(session, actor=None, action="audit.genesis")

    def checkpoint(self, seq: int, digest: str) -> Checkpoint:
        """Sign ``(seq, hash)`` and store it in the checkpoint store."""
        cp = Checkpoint(seq=seq, entry_hash=digest, at=datetime.fromisoformat(_now_text()))
        signature = self._signing().sign_checkpoint(cp)
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
        """Checkpoint the chain's current head (``fjo audit checkpoint``: after a checkpoint
        store outage left the newest rows uncovered). Refused when the trail does not verify
        but for those uncovered rows: a signature must not vouch for a tampered log."""
        result = self.verify(engine)
        blocking = [p for p in result.problems if p != result.uncovered]
        if blocking:
            raise TrailNotSound("; ".join(blocking[:5]))
        with engine.connect() as conn:
            head = conn.execute(select(AuditHeadRow.seq, AuditHeadRow.hash)).first()
        if head is None or head.seq == 0:
            return None
        return self.checkpoint(head.seq, head.hash)

    def stored_checkpoints(self, *, since: int = 0) -> list[Checkpoint]:
        """The checkpoint store's checkpoints after row ``since``, oldest first."""
        with self._checkpoint_engine.connect() as conn:
            return _checkpoints(conn, since=since)

    def verify(
        self,
        engine: Engine,
        *,
        exported: Iterable[Checkpoint] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> VerificationResult:
        """Check the whole chain, its head and the signed checkpoints (and ``exported``
        copies of them, read back from storage outside the database). ``progress(done,
        total)`` hears of the rows as they are checked (total: the head's row number)."""
        copies = list(exported)
        result = self._verify_once(engine, copies, progress)
        if result.uncovered is not None and result.problems == [result.uncovered]:
            # Only the newest rows lack a checkpoint: on a live trail theirs may be on its way
            # (it is written just after their commit). Look once more before saying so.
            time.sleep(_CHECKPOINT_GRACE_S)
            result = self._verify_once(engine, copies, progress)
        return result

    def _verify_once(
        self,
        engine: Engine,
        exported: list[Checkpoint],
        progress: Callable[[int, int], None] | None = None,
    ) -> VerificationResult:
        # Checkpoints first, in their own connection: each names a row committed before it
        # was read, so one beyond the log's end means rows were deleted.
        early = self.stored_checkpoints()
        newest = max((cp.seq for cp in early), default=0)
        with _snapshot(engine) as conn:
            head_row = conn.execute(select(AuditHeadRow.seq, AuditHeadRow.hash)).first()
            head = None if head_row is None else (head_row.seq, head_row.hash)
            # On SQLite the snapshot holds the file's write lock: read the store through it.
            shared = self._checkpoint_engine is engine and conn.dialect.name == "sqlite"

            def checkpoints() -> Iterator[Checkpoint]:
                # Read after the rows (verify_chain takes them last): a row committed just
                # before the snapshot may have had its checkpoint written after the first
                # read; those up to the snapshot's head are taken so that it is covered.
                yield from early
                limit = head[0] if head else 0
                late = (
                    _checkpoints(conn, since=newest)
                    if shared
                    else self.stored_checkpoints(since=newest)
                )
                yield from (c for c in late if c.seq <= limit)

            entries = _iter_entries(conn)
            if progress is not None:
                entries = _counted(entries, head[0] if head else 0, progress)
            return verify_chain(
                entries,
                checkpoints(),
                public_key=self.public_key,
                head=head,
                exported=exported,
                allow_dev_key=self._allow_dev_key,
            )

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT released: its entries commit with the outermost transaction
        pending = session.info.pop(_PENDING, None)
        if pending is None:
            return
        try:
            self.checkpoint(*pending)
        except Exception as exc:
            # The entry is committed; the next checkpoint will cover it. Say so loudly.
            _log.error("audit checkpoint failed", extra={"error_type": type(exc).__name__})

    def _after_transaction_create(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            session.info.setdefault(_SAVED, {})[transaction] = session.info.get(_PENDING)

    def _after_rollback(self, session: Session) -> None:
        # Fired for a SAVEPOINT's rollback too, while it is still the session's current one.
        # The outermost (no savepoint, or none saved): nothing it appended commits.
        head = session.info.get(_SAVED, {}).get(session.get_nested_transaction())
        if head is None:
            session.info.pop(_PENDING, None)
        else:
            session.info[_PENDING] = head

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            # Committed (after_commit took the head already), rolled back or closed: what
            # is still pending was never committed.
            session.info.pop(_PENDING, None)
            session.info.pop(_SAVED, None)
            return
        saved = session.info.get(_SAVED)
        if saved is not None:
            saved.pop(transaction, None)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}


class _snapshot:
    """One connection whose reads see one moment (REPEATABLE READ on PostgreSQL; a SQLite
    read transaction already does), so the head and the rows agree."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        conn = self._engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        self._conn = conn
        return conn

    def __exit__(self, *exc: object) -> None:
        assert self._conn is not None
        self._conn.rollback()
        self._conn.close()


def _checkpoints(conn: Connection, *, since: int) -> list[Checkpoint]:
    rows = conn.execute(
        select(
            AuditCheckpointRow.seq,
            AuditCheckpointRow.entry_hash,
            AuditCheckpointRow.at,
            AuditCheckpointRow.signature,
        )
        .where(AuditCheckpointRow.seq > since)
        .order_by(AuditCheckpointRow.seq)
    )
    return [
        Checkpoint(
            seq=r.seq,
            entry_hash=r.entry_hash,
            at=datetime.fromisoformat(r.at),
            signature=r.signature,
        )
        for r in rows
    ]


def _counted(
    entries: Iterator[AuditEntry], total: int, progress: Callable[[int, int], None]
) -> Iterator[AuditEntry]:
    progress(0, total)
    n = 0
    for n, entry in enumerate(entries, start=1):
        if n % 1000 == 0:
            progress(n, max(total, n))
        yield entry
    progress(n, max(total, n))


def _iter_entries(conn: Connection) -> Iterator[AuditEntry]:
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
            signature=r.signature,
        )
