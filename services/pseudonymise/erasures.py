"""The erasure register: which records (and spine people) fjo must never take in again.

An objection or an erasure shreds what the vault keeps of a record; the register remembers
that it happened, so a partner's later re-send of the same record (same source, type and
record id, hence the same record token) is not vaulted or published again but settled as
suppressed (``services.runtime.delivery.Suppressed``) with the reason ``erased`` or
``objected``. A spine person's record token is the person's own token, so a person objected
to stays out in every later version.

One row per request (record token, receipt id): the kind, the record's type and source, and
when it was registered. No identifier and no unkeyed hash of one: the token is the keyed
pseudonym every service already holds, the receipt id derives from the partner's request.
An opt-out is not registered: the person stays in the research store and in linkage, and
access applies the opt-out at extract time.

The register is the proof that a request was honoured, so retention never deletes it
(``services.pseudonymise.retention``). Rows are written in the objection's own transaction,
which commits with its processed marker: a replay or another replica registers nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String, Table, select
from sqlalchemy.orm import Session

from contracts.objections import ObjectionKind
from services.pseudonymise.vault import metadata
from services.runtime.db import insert_for

__all__ = [
    "REASON_ERASED",
    "REASON_OBJECTED",
    "REGISTERED_KINDS",
    "erasures",
    "register",
    "suppression_reasons",
]

erasures = Table(
    "pseudonymise_erasures",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("receipt_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("record_type", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

REGISTERED_KINDS = frozenset({ObjectionKind.OBJECTION, ObjectionKind.ERASURE})
REASON_ERASED = "erased"
REASON_OBJECTED = "objected"


def register(
    session: Session,
    *,
    record_token: str,
    receipt_id: uuid.UUID,
    kind: ObjectionKind,
    record_type: str,
    source: str,
) -> None:
    """Remember one objection or erasure of ``record_token``; the same request again (a
    replay) leaves the first row as it is."""
    if kind not in REGISTERED_KINDS:
        raise ValueError(f"{kind.value} requests are not registered")
    stmt = insert_for(session, erasures).on_conflict_do_nothing(
        index_elements=["record_token", "receipt_id"]
    )
    session.execute(
        stmt,
        [
            {
                "record_token": record_token,
                "receipt_id": str(receipt_id),
                "kind": kind.value,
                "record_type": record_type,
                "source": source,
                "registered_at": datetime.now(UTC),
            }
        ],
    )


def suppression_reasons(session: Session, tokens: Iterable[str]) -> dict[str, str]:
    """For each of ``tokens`` in the register, why a record of it is suppressed: ``erased``
    if any request about it was an erasure, else ``objected``. One query per call."""
    wanted = sorted(set(tokens))
    if not wanted:
        return {}
    c = erasures.c
    reasons: dict[str, str] = {}
    for token, kind in session.execute(
        select(c.record_token, c.kind).where(c.record_token.in_(wanted))
    ):
        if kind == ObjectionKind.ERASURE.value or token not in reasons:
            reasons[token] = (
                REASON_ERASED if kind == ObjectionKind.ERASURE.value else REASON_OBJECTED
            )
    return reasons
