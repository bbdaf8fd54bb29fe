"""Link's per-record rows, read and written for a whole run of records at once.

The worker hands link runs of linkage-keys records. Reading each record's incoming keys,
result and review-queue row on its own, then writing each back, costs about seven database
round trips per record, which is most of link's time. :class:`LinkRows` reads the rows of
a run's tokens in one query per table, serves every later read from memory (including the
run's own writes, so a token that appears twice sees its first write), and writes back at
:meth:`LinkRows.flush` in one statement per table and kind.

Anything that queries link's tables directly (the spine's "who points at this person"
lookup) must :meth:`flush` first, so the database holds the run's writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from services.link import storage as t
from services.runtime.db import update_by_key

__all__ = ["LinkRows", "TokenRows"]

_CHUNK = 500  # tokens per IN (...) list


class TokenRows:
    """Rows of one table keyed by ``record_token``: a read cache with write-behind."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._rows: dict[str, dict[str, Any] | None] = {}
        self._inserts: dict[str, dict[str, Any]] = {}
        self._updates: dict[str, dict[str, Any]] = {}

    def prefetch(self, session: Session, tokens: Iterable[str]) -> None:
        """Read the rows of ``tokens`` not read yet (a token without a row is cached too)."""
        missing = sorted({tok for tok in tokens if tok not in self._rows})
        c = self.table.c
        for i in range(0, len(missing), _CHUNK):
            chunk = missing[i : i + _CHUNK]
            for row in session.execute(select(self.table).where(c.record_token.in_(chunk))):
                self._rows[row.record_token] = dict(row._mapping)
            for tok in chunk:
                self._rows.setdefault(tok, None)

    def get(self, session: Session, token: str) -> dict[str, Any] | None:
        """The row of ``token`` as this run sees it (None: no row); do not mutate it."""
        if token not in self._rows:
            self.prefetch(session, [token])
        return self._rows[token]

    def put(self, session: Session, token: str, values: dict[str, Any]) -> None:
        """Insert the row of ``token``, or update these columns of it, at the next flush."""
        row = self.get(session, token)
        if row is None:
            row = self._rows[token] = self._inserts[token] = {"record_token": token, **values}
            return
        row.update(values)
        if token not in self._inserts:
            self._updates.setdefault(token, {}).update(values)

    def flush(self, session: Session) -> None:
        if self._inserts:
            session.execute(insert(self.table), list(self._inserts.values()))
        if self._updates:
            update_by_key(
                session,
                self.table,
                "record_token",
                [{"record_token": tok, **values} for tok, values in self._updates.items()],
            )
        self._inserts.clear()
        self._updates.clear()


class LinkRows:
    """Link's spine, incoming keys, results and review-queue rows for one run, plus the
    append-only rows (spine history, audit) it adds."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.spine = TokenRows(t.spine_records)
        self.incoming = TokenRows(t.incoming_keys)
        self.results = TokenRows(t.results)
        self.reviews = TokenRows(t.review_queue)
        self._appended: dict[Table, list[dict[str, Any]]] = {t.spine_history: [], t.audit: []}

    def prefetch(self, tokens: Iterable[str], *, spine: Iterable[str] = ()) -> None:
        """Read the rows of incoming records ``tokens`` and spine people ``spine``."""
        wanted = list(tokens)
        for rows in (self.incoming, self.results, self.reviews):
            rows.prefetch(self.session, wanted)
        self.spine.prefetch(self.session, spine)

    def history(self, values: dict[str, Any]) -> None:
        self._appended[t.spine_history].append(values)

    def audit(self, values: dict[str, Any]) -> None:
        self._appended[t.audit].append(values)

    def flush(self) -> None:
        """Write the run's changes (inside the caller's transaction)."""
        for rows in (self.spine, self.incoming, self.results, self.reviews):
            rows.flush(self.session)
        for table, appended in self._appended.items():
            if appended:
                self.session.execute(insert(table), appended)
                appended.clear()
