"""The research store: pseudonymised content joined, on record token, to its current link.

Both writers take a batch (the worker hands over runs of records, written in a few
statements) and are idempotent, because the bus delivers at least once and may redeliver
old messages after newer ones: a record is replaced only by a higher ``record_version``; a
link result only by a higher ``sequence`` (the contract's "a later sequence supersedes"),
and every result is kept once in the history, so a redelivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from services.access.storage.models import LinkDecisionRow, LinkResultRow, ResearchRecordRow
from services.runtime.db import update_by_key

__all__ = [
    "LinkResult",
    "StoredRecord",
    "apply_link_result",
    "apply_link_results",
    "apply_record",
    "apply_records",
]

# Core statements on the ORM's tables: the worker writes a batch in a few round trips.
_RECORDS: Table = ResearchRecordRow.__table__  # type: ignore[assignment]
_RESULTS: Table = LinkResultRow.__table__  # type: ignore[assignment]
_DECISIONS: Table = LinkDecisionRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One pseudonymised record as the research store keeps it."""

    record_token: str
    record_type: str
    source: str
    record_version: int = 1
    key_version: int = 1
    week_of_birth: date | None = None
    sex: int | None = None
    lsoa: str | None = None
    local_authority: str | None = None
    related_tokens: dict[str, str] = field(default_factory=dict)
    event_date: date | None = None
    content: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkResult:
    """One linkage result for a record token (``alf`` None: not linked)."""

    record_token: str
    sequence: int
    alf: str | None
    status_code: int
    match_probability: float
    model_version: str
    supersedes_sequence: int | None = None
    reason: str = "initial"


def apply_record(session: Session, record: StoredRecord) -> bool:
    """Insert or supersede a record; True when the store changed."""
    return apply_records(session, [record]) == 1


def apply_records(session: Session, records: Sequence[StoredRecord]) -> int:
    """Insert or supersede records in a few statements; returns how many rows changed.

    A record replaces the stored one only with a higher ``record_version``; of several
    versions of one record in ``records``, the highest is kept.
    """
    latest: dict[str, StoredRecord] = {}
    for record in records:
        seen = latest.get(record.record_token)
        if seen is None or record.record_version > seen.record_version:
            latest[record.record_token] = record
    if not latest:
        return 0
    c = _RECORDS.c
    stored = dict(
        session.execute(
            select(c.record_token, c.record_version).where(c.record_token.in_(sorted(latest)))
        ).all()
    )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for token, record in latest.items():
        version = stored.get(token)
        if version is None or version < record.record_version:
            row = {"record_token": token, **_record_values(record)}
            (inserts if version is None else updates).append(row)
    return _write(session, _RECORDS, inserts, updates)


def _write(
    session: Session, table: Table, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]
) -> int:
    if inserts:
        session.execute(insert(table), inserts)
    if updates:
        update_by_key(session, table, "record_token", updates)
    return len(inserts) + len(updates)


def _record_values(record: StoredRecord) -> dict[str, Any]:
    return {
        "record_type": record.record_type,
        "source": record.source,
        "record_version": record.record_version,
        "key_version": record.key_version,
        "week_of_birth": record.week_of_birth,
        "sex": record.sex,
        "lsoa": record.lsoa,
        "local_authority": record.local_authority,
        "case_token": record.related_tokens.get("case"),
        "related_tokens": dict(record.related_tokens),
        "event_date": record.event_date,
        "content": dict(record.content),
        "flags": list(record.flags),
    }


def apply_link_result(session: Session, result: LinkResult) -> bool:
    """Record a link result; True when it became the current decision for its record."""
    return apply_link_results(session, [result]) == 1


def apply_link_results(session: Session, results: Sequence[LinkResult]) -> int:
    """Record link results in a few statements; returns how many decisions changed.

    Every result is kept once in the history (a redelivery adds nothing); a record's
    decision is its highest ``sequence`` so far.
    """
    new: dict[tuple[str, int], LinkResult] = {}
    for result in results:
        new.setdefault((result.record_token, result.sequence), result)
    if not new:
        return 0
    tokens = sorted({token for token, _ in new})
    h, d = _RESULTS.c, _DECISIONS.c
    kept = {
        (token, sequence)
        for token, sequence in session.execute(
            select(h.record_token, h.sequence).where(h.record_token.in_(tokens))
        )
    }
    fresh = [r for key, r in new.items() if key not in kept]
    if not fresh:
        return 0
    session.execute(
        insert(_RESULTS),
        [
            {
                "record_token": r.record_token,
                "sequence": r.sequence,
                "supersedes_sequence": r.supersedes_sequence,
                "alf": r.alf,
                "status_code": r.status_code,
                "match_probability": r.match_probability,
                "model_version": r.model_version,
                "reason": r.reason,
            }
            for r in fresh
        ],
    )
    current = dict(
        session.execute(select(d.record_token, d.sequence).where(d.record_token.in_(tokens))).all()
    )
    best: dict[str, LinkResult] = {}
    for r in fresh:
        top = best.get(r.record_token)
        if top is None or r.sequence > top.sequence:
            best[r.record_token] = r
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for token, r in best.items():
        seq = current.get(token)
        # A decision changes only to a higher sequence: a later result that already
        # arrived stays the decision.
        if seq is None or seq < r.sequence:
            row = {
                "record_token": token,
                "sequence": r.sequence,
                "alf": r.alf,
                "status_code": r.status_code,
                "match_probability": r.match_probability,
                "model_version": r.model_version,
            }
            (inserts if seq is None else updates).append(row)
    return _write(session, _DECISIONS, inserts, updates)
