"""Refused requests on SQL: counted per source and window, summarised into the audit trail.

The counts live in ``access_refusal_windows``, shared by every replica of the API (so N
replicas count a source as one does), one row per source and window, and a row goes once its
window's summary is in the trail. Windows are summarised when a later refusal comes, and
when the API starts and stops; until then their counts wait in the table, never only in
memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from services.access.config import AuditSettings
from services.access.domain.refusals import (
    OTHER_SOURCES,
    RefusalWindow,
    reason_key,
    window_start,
)
from services.access.storage.audit_store import AuditTrail
from services.access.storage.models import RefusalWindowRow, utcnow
from services.runtime.db import transaction

__all__ = ["SUMMARY_ACTION", "RefusalLedger"]

SUMMARY_ACTION = "audit.refusals"


class RefusalLedger:
    """Audits refusals per source and window: the first few in full, the rest counted."""

    def __init__(
        self,
        audit: AuditTrail,
        sessions: sessionmaker[Session],
        settings: AuditSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._audit = audit
        self._sessions = sessions
        self._settings = settings
        self.clock = clock

    def record(
        self,
        source: str,
        *,
        actor: str | None,
        action: str,
        outcome: str,
        reason: str,
        object_type: str | None = None,
        object_id: str | None = None,
        project_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """One refusal from ``source``, in its own transaction (the request's was rolled back)."""
        now = self.clock()
        start = window_start(now, self._settings.refusal_window_s)
        with transaction(self._sessions) as s:
            source = self._admit(s, source[:200], start)
            row = self._locked_row(s, source, start, now)
            window = _window(row)
            in_full = window.add(
                now, reason_key(action, reason), burst=self._settings.refusal_burst
            )
            _store(row, window)
            if in_full:
                self._audit.append(
                    s,
                    actor=actor,
                    action=action,
                    outcome=outcome,
                    object_type=object_type,
                    object_id=object_id,
                    project_id=project_id,
                    detail={**(detail or {}), "source": source},
                )
            self._summarise(s, before=start)

    def flush(self, *, everything: bool = False) -> int:
        """Summarise the windows that have closed (all of them with ``everything``, when the
        service stops); returns how many summary entries were written."""
        length = self._settings.refusal_window_s
        with transaction(self._sessions) as s:
            before = window_start(self.clock(), length)
            if everything:
                before = before.replace(year=before.year + 1)
            return self._summarise(s, before=before)

    def _admit(self, s: Session, source: str, start: datetime) -> str:
        """``source``, or the shared ``<kind>:*`` once the window counts as many sources as
        allowed."""
        if s.get(RefusalWindowRow, (source, start)) is not None:
            return source
        sources = s.execute(
            select(func.count())
            .select_from(RefusalWindowRow)
            .where(RefusalWindowRow.window_start == start)
        ).scalar_one()
        if sources < self._settings.refusal_sources:
            return source
        kind, _, _ = source.partition(":")  # "address:*", "subject:*"
        return f"{kind}:{OTHER_SOURCES}" if kind else OTHER_SOURCES

    def _locked_row(
        self, s: Session, source: str, start: datetime, now: datetime
    ) -> RefusalWindowRow:
        # Insert-if-missing, then lock: two replicas' first refusals of one source and
        # window meet on the primary key instead of failing.
        values = {
            "source": source,
            "window_start": start,
            "first_seen": now,
            "last_seen": now,
            "refused": 0,
            "in_full": 0,
            "reasons": {},
        }
        upsert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(upsert(RefusalWindowRow).values(**values).on_conflict_do_nothing())
        return s.execute(
            select(RefusalWindowRow)
            .where(RefusalWindowRow.source == source, RefusalWindowRow.window_start == start)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()

    def _summarise(self, s: Session, *, before: datetime) -> int:
        closed = s.execute(
            select(RefusalWindowRow)
            .where(RefusalWindowRow.window_start < before)
            .order_by(RefusalWindowRow.window_start, RefusalWindowRow.source)
            .with_for_update(skip_locked=True)
        ).scalars()
        written = 0
        for row in list(closed):
            window = _window(row)
            if window.needs_summary:
                self._audit.append(
                    s,
                    actor=None,
                    action=SUMMARY_ACTION,
                    outcome="denied",
                    detail=window.summary(self._settings.refusal_window_s),
                )
                written += 1
            s.delete(row)
        s.flush()
        return written


def _window(row: RefusalWindowRow) -> RefusalWindow:
    return RefusalWindow(
        source=row.source,
        start=row.window_start,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        refused=row.refused,
        in_full=row.in_full,
        reasons=dict(row.reasons or {}),
    )


def _store(row: RefusalWindowRow, window: RefusalWindow) -> None:
    row.first_seen = window.first_seen
    row.last_seen = window.last_seen
    row.refused = window.refused
    row.in_full = window.in_full
    row.reasons = dict(window.reasons)  # a new object: the JSON column sees the change
