"""The research store: pseudonymised content joined, on record token, to its current link.

Both writers are idempotent, because the bus delivers at least once and may redeliver old
messages after newer ones: a record is replaced only by a higher ``record_version``; a link
result only by a higher ``sequence`` (the contract's "a later sequence supersedes"), and
every result is kept once in the history, so a redelivery changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from services.access.storage.models import LinkDecisionRow, LinkResultRow, ResearchRecordRow

__all__ = ["LinkResult", "StoredRecord", "apply_link_result", "apply_record"]


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
    row = session.get(ResearchRecordRow, record.record_token)
    if row is not None and row.record_version >= record.record_version:
        return False
    values: dict[str, Any] = {
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
    if row is None:
        session.add(ResearchRecordRow(record_token=record.record_token, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.flush()
    return True


def apply_link_result(session: Session, result: LinkResult) -> bool:
    """Record a link result; True when it became the current decision for its record."""
    if session.get(LinkResultRow, (result.record_token, result.sequence)) is not None:
        return False  # redelivery
    session.add(
        LinkResultRow(
            record_token=result.record_token,
            sequence=result.sequence,
            supersedes_sequence=result.supersedes_sequence,
            alf=result.alf,
            status_code=result.status_code,
            match_probability=result.match_probability,
            model_version=result.model_version,
            reason=result.reason,
        )
    )
    current = session.get(LinkDecisionRow, result.record_token)
    if current is not None and current.sequence >= result.sequence:
        session.flush()
        return False  # a later result already arrived: it stays the decision
    values: dict[str, Any] = {
        "sequence": result.sequence,
        "alf": result.alf,
        "status_code": result.status_code,
        "match_probability": result.match_probability,
        "model_version": result.model_version,
    }
    if current is None:
        session.add(LinkDecisionRow(record_token=result.record_token, **values))
    else:
        for name, value in values.items():
            setattr(current, name, value)
    session.flush()
    return True
