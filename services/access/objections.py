"""Objections, erasure requests and opt-outs in access: the research store forgets, the
exclusions are remembered, extracts that hold the person are flagged, every step audited.

Three events reach access, in no order between them (they travel under different keys):

* ``pseudonymise.record-objected`` (every request, once): the request's outcome is decided
  and counted here: applied when access holds or held the record, else refused with
  ``unknown-record``. An objection or erasure takes the record out of the store.
* ``link.result-published`` with ``OBJECTED``: link withdrew a record's link (its own
  objection, or the spine person it was linked to objected): the record goes too.
* ``link.person-objected``: a spine person's request by ALF: for an objection or erasure
  every record ever linked to the ALF goes; an opt-out only marks the ALF, which extracts of
  projects whose legal basis requires opt-outs leave out.

What is taken out is remembered (``access_exclusions``), so a late result or a re-sent
record cannot bring it back, and future extracts leave it out. Extracts record which
records they hold (``access_extract_holdings``), so those that hold one are flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from contracts.events import LinkStatus, PersonObjected, RecordObjected
from contracts.objections import ObjectionKind, ObjectionOutcome, RefusalReason
from services.access.domain.objections import REMOVING_KINDS, opt_outs_apply
from services.access.storage.audit_store import AuditTrail
from services.access.storage.models import (
    ExclusionRow,
    ExtractHoldingRow,
    ExtractRow,
    LinkDecisionRow,
    LinkResultRow,
    ObjectionRow,
    ProjectRow,
    ResearchRecordRow,
)
from services.access.storage.research_store import LinkResult
from services.runtime.db import insert_for

__all__ = [
    "ACTOR",
    "excluded_records",
    "flag_extracts",
    "on_link_results",
    "on_person_objected",
    "on_record_objected",
]

log = logging.getLogger("fjo.access.objections")

ACTOR = "system:objections"
"""Who the audit trail names for what the worker does on an objection."""

RECORD, ALF = "record", "alf"


def _now() -> datetime:
    return datetime.now(UTC)


def excluded_records(session: Session, tokens: Iterable[str]) -> set[str]:
    """Which of ``tokens`` an objection or erasure took out (a record sent again after it
    stays out)."""
    wanted = sorted(set(tokens))
    if not wanted:
        return set()
    e = ExclusionRow.__table__.c
    return set(
        session.execute(
            select(e.value).where(
                e.scope == RECORD, e.kind.in_(sorted(REMOVING_KINDS)), e.value.in_(wanted)
            )
        ).scalars()
    )


def _remember(
    session: Session, scope: str, values: Iterable[str], kind: str, receipt: str | None
) -> None:
    rows = [
        {"scope": scope, "value": v, "kind": kind, "receipt_id": receipt, "excluded_at": _now()}
        for v in sorted(set(values))
    ]
    if rows:
        session.execute(insert_for(session, ExclusionRow.__table__).on_conflict_do_nothing(), rows)


def _take_out(
    session: Session,
    audit: AuditTrail,
    tokens: Sequence[str],
    *,
    kind: str,
    receipt: str | None,
    cause: str,
) -> int:
    """Delete records from the research store (and their current link decision), remember
    them as excluded, flag the extracts that hold them; audited. Returns rows deleted."""
    if not tokens:
        return 0
    wanted = sorted(set(tokens))
    r = ResearchRecordRow.__table__.c
    d = LinkDecisionRow.__table__.c
    deleted = session.execute(delete(ResearchRecordRow).where(r.record_token.in_(wanted)))
    session.execute(delete(LinkDecisionRow).where(d.record_token.in_(wanted)))
    _remember(session, RECORD, wanted, kind, receipt)
    removed = int(getattr(deleted, "rowcount", 0) or 0)
    flagged = flag_extracts(session, audit, tokens=wanted, reason=f"{kind}: records withdrawn")
    audit.append(
        session,
        actor=ACTOR,
        action="objection.records-removed",
        object_type="objection",
        object_id=receipt,
        detail={
            "kind": kind,
            "cause": cause,
            "record_tokens": wanted,
            "research_rows_deleted": removed,
            "extracts_flagged": flagged,
        },
    )
    return removed


def flag_extracts(
    session: Session,
    audit: AuditTrail,
    *,
    tokens: Sequence[str] = (),
    alfs: Sequence[str] = (),
    reason: str,
    projects: set[str] | None = None,
) -> list[str]:
    """Mark the extracts holding any of ``tokens`` or ``alfs`` for rebuild (within
    ``projects`` if given); the ids newly flagged, each audited under its project."""
    h = ExtractHoldingRow.__table__.c
    conditions = []
    if tokens:
        conditions.append(h.record_token.in_(sorted(set(tokens))))
    if alfs:
        conditions.append(h.alf.in_(sorted(set(alfs))))
    if not conditions:
        return []
    x = ExtractRow.__table__.c
    rows = session.execute(
        select(x.id, x.project_id)
        .where(x.id.in_(select(h.extract_id).where(or_(*conditions))), x.rebuild_reason.is_(None))
        .order_by(x.id)
    ).all()
    ids = [(i, p) for i, p in rows if projects is None or p in projects]
    if not ids:
        return []
    now = _now()
    session.execute(
        update(ExtractRow)
        .where(x.id.in_([i for i, _ in ids]))
        .values(rebuild_reason=reason[:200], rebuild_flagged_at=now)
    )
    for extract_id, project_id in ids:
        audit.append(
            session,
            actor=ACTOR,
            action="extract.flagged-for-rebuild",
            object_type="extract",
            object_id=extract_id,
            project_id=project_id,
            detail={"reason": reason},
        )
    return [i for i, _ in ids]


def on_record_objected(session: Session, audit: AuditTrail, event: RecordObjected) -> None:
    """Decide and count a request; take the record out for an objection or erasure.
    Idempotent: a request already counted changes nothing."""
    receipt = str(event.receipt_id)
    if session.get(ObjectionRow, receipt) is not None:
        return
    token = event.record_token
    known = (
        session.get(ResearchRecordRow, token) is not None
        or session.execute(
            select(func.count())
            .select_from(LinkResultRow)
            .where(LinkResultRow.record_token == token)
        ).scalar_one()
        > 0
        or session.execute(
            select(func.count())
            .select_from(ExclusionRow)
            .where(ExclusionRow.scope == RECORD, ExclusionRow.value == token)
        ).scalar_one()
        > 0
    )
    if known and event.kind.value in REMOVING_KINDS:
        _take_out(session, audit, [token], kind=event.kind.value, receipt=receipt, cause="request")
    outcome = ObjectionOutcome.APPLIED if known else ObjectionOutcome.REFUSED
    refusal = None if known else RefusalReason.UNKNOWN_RECORD.value
    session.add(
        ObjectionRow(
            receipt_id=receipt,
            kind=event.kind.value,
            subject=event.subject.value,
            record_type=event.record_type.value,
            source=event.source.value,
            record_token=token,
            outcome=outcome.value,
            refusal_reason=refusal,
            received_at=_now(),
        )
    )
    session.flush()
    audit.append(
        session,
        actor=ACTOR,
        action="objection.received",
        outcome="ok" if known else "refused",
        object_type="objection",
        object_id=receipt,
        detail={
            "kind": event.kind.value,
            "subject": event.subject.value,
            "record_type": event.record_type.value,
            "source": event.source.value,
            "record_token": token,
            "refusal_reason": refusal,
        },
    )
    log.info(
        "objection applied" if known else "objection refused",
        extra={"receipt_id": receipt, "kind": event.kind.value, "refusal_reason": refusal},
    )


def on_link_results(session: Session, audit: AuditTrail, results: Sequence[LinkResult]) -> None:
    """After link results are stored: a withdrawn link (``OBJECTED``) takes its record out;
    a result that links a record to an ALF an objection took out (one in flight when it
    came) takes that record out too, so nothing comes back."""
    withdrawn = [r.record_token for r in results if r.status_code == int(LinkStatus.OBJECTED)]
    alfs = sorted({r.alf for r in results if r.alf is not None})
    gone: set[str] = set()
    if alfs:
        e = ExclusionRow.__table__.c
        gone = set(
            session.execute(
                select(e.value).where(
                    e.scope == ALF, e.kind.in_(sorted(REMOVING_KINDS)), e.value.in_(alfs)
                )
            ).scalars()
        )
    late = [r.record_token for r in results if r.alf in gone]
    if withdrawn:
        _take_out(
            session,
            audit,
            withdrawn,
            kind=ObjectionKind.OBJECTION.value,
            receipt=None,
            cause="link-withdrawn",
        )
    if late:
        _take_out(
            session,
            audit,
            late,
            kind=ObjectionKind.OBJECTION.value,
            receipt=None,
            cause="linked-to-an-excluded-person",
        )


def _records_of(session: Session, alf: str) -> list[str]:
    h = LinkResultRow.__table__.c
    d = LinkDecisionRow.__table__.c
    tokens = set(session.execute(select(h.record_token).where(h.alf == alf)).scalars())
    tokens |= set(session.execute(select(d.record_token).where(d.alf == alf)).scalars())
    return sorted(tokens)


def on_person_objected(session: Session, audit: AuditTrail, event: PersonObjected) -> None:
    """A spine person's request by ALF: remembered; for an objection or erasure every
    record ever linked to them leaves the store; an opt-out flags the extracts of projects
    whose legal basis requires opt-outs."""
    kind, receipt, alf = event.kind.value, str(event.receipt_id), event.alf
    e = ExclusionRow.__table__.c
    seen = session.execute(
        select(func.count())
        .select_from(ExclusionRow)
        .where(e.scope == ALF, e.value == alf, e.kind == kind)
    ).scalar_one()
    if seen:
        return
    _remember(session, ALF, [alf], kind, receipt)
    tokens = _records_of(session, alf)
    if kind in REMOVING_KINDS:
        _take_out(session, audit, tokens, kind=kind, receipt=receipt, cause="person")
        flagged = flag_extracts(session, audit, alfs=[alf], reason=f"{kind}: a person withdrawn")
    else:
        projects = {
            p.id
            for p in session.scalars(select(ProjectRow))
            if opt_outs_apply((p.requested or {}).get("legal_basis"))
        }
        flagged = flag_extracts(
            session,
            audit,
            tokens=tokens,
            alfs=[alf],
            reason="opt-out: a person opted out",
            projects=projects,
        )
    audit.append(
        session,
        actor=ACTOR,
        action="objection.person",
        object_type="objection",
        object_id=receipt,
        detail={"kind": kind, "alf": alf, "records": len(tokens), "extracts_flagged": flagged},
    )
