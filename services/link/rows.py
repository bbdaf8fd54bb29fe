"""Link's per-record rows, read and written for a whole run of records at once.

The worker hands link runs of linkage-keys records. Reading each record's incoming keys,
result and review-queue row on its own, then writing each back, costs about seven database
round trips per record, which is most of link's time. :class:`LinkRows` reads the rows of
a run's tokens in one query per table, serves every later read from memory (including the
run's own writes, so a token that appears twice sees its first write), and writes back at
:meth:`LinkRows.flush` in one statement per table and kind.

Anything that queries link's tables directly must :meth:`flush` first, so the database holds
the run's writes.

Results are written under a fence: an update applies only if the row's ``sequence`` is still
the one read, and a new row only if no other writer inserted it meanwhile; otherwise
:class:`RowsChanged` (the caller retries with fresh rows). Two writers can meet on a result
only in a moment of handover (a replica losing a partition) or when a reviewer decides while
the worker re-links; neither may publish a sequence the other has published.

Spine people changed in the run get their spine-log positions at :meth:`LinkRows.flush`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.link import spine_log
from services.link import storage as t
from services.runtime.db import insert_for, update_by_key

__all__ = ["LinkRows", "RowsChanged", "TokenRows"]


class RowsChanged(Exception):
    """A fenced row was changed by another writer since it was read."""


_CHUNK = 500  # tokens per IN (...) list


class TokenRows:
    """Rows of one table keyed by ``record_token``: a read cache with write-behind."""

    def __init__(self, table: Table, *, fence: str | None = None) -> None:
        self.table = table
        self.fence = fence
        """A column whose value at read time an update requires (None: no fence)."""
        self._read: dict[str, Any] = {}
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
                if self.fence is not None:
                    self._read[row.record_token] = row._mapping[self.fence]
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

    def forget(self, tokens: Iterable[str]) -> None:
        """Drop cached rows (not pending writes), so the next read comes from the database."""
        for tok in tokens:
            if tok not in self._inserts and tok not in self._updates:
                self._rows.pop(tok, None)
                self._read.pop(tok, None)

    def flush(self, session: Session) -> None:
        if self._inserts:
            if self.fence is None:
                session.execute(insert(self.table), list(self._inserts.values()))
            else:
                try:
                    with session.begin_nested():
                        session.execute(insert(self.table), list(self._inserts.values()))
                except IntegrityError:
                    raise RowsChanged(f"{self.table.name}: a row was inserted meanwhile") from None
        if self._updates:
            if self.fence is None:
                update_by_key(
                    session,
                    self.table,
                    "record_token",
                    [{"record_token": tok, **values} for tok, values in self._updates.items()],
                )
            else:
                self._fenced_updates(session)
        for tok in self._inserts:
            if self.fence is not None:
                self._read[tok] = self._inserts[tok].get(self.fence)
        for tok, values in self._updates.items():
            if self.fence is not None and self.fence in values:
                self._read[tok] = values[self.fence]
        self._inserts.clear()
        self._updates.clear()

    def _fenced_updates(self, session: Session) -> None:
        assert self.fence is not None
        c = self.table.c
        fence = self.fence
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for tok, values in self._updates.items():
            cols = tuple(sorted(values))
            one = {f"b_{k}": v for k, v in values.items()}
            one["b_record_token"] = tok
            one["b_fence_was"] = self._read[tok]
            shapes.setdefault(cols, []).append(one)
        for cols, params in shapes.items():
            stmt = (
                update(self.table)
                .where(
                    and_(
                        c.record_token == bindparam("b_record_token"),
                        c[fence] == bindparam("b_fence_was"),
                    )
                )
                .values({k: bindparam(f"b_{k}") for k in cols})
            )
            if session.get_bind().dialect.supports_sane_multi_rowcount:
                done = session.execute(stmt, params).rowcount
            else:
                done = sum(session.execute(stmt, [p]).rowcount for p in params)
            if done != len(params):
                raise RowsChanged(
                    f"{self.table.name}: {len(params) - done} row(s) changed meanwhile"
                )


class LinkRows:
    """Link's spine, incoming keys, results and review-queue rows for one run, plus the
    append-only rows (spine history, audit) it adds."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.spine = TokenRows(t.spine_records)
        self.incoming = TokenRows(t.incoming_keys)
        self.results = TokenRows(t.results, fence="sequence")
        self.reviews = TokenRows(t.review_queue)
        self._appended: dict[Table, list[dict[str, Any]]] = {t.spine_history: [], t.audit: []}
        self._log: list[tuple[str, str | None, int | None, str]] = []
        self.positions: dict[str, int] = {}
        """Spine-log positions the last flush gave, by spine person token."""

    def prefetch(self, tokens: Iterable[str], *, spine: Iterable[str] = ()) -> None:
        """Read the rows of incoming records ``tokens`` and spine people ``spine``."""
        wanted = list(tokens)
        for rows in (self.incoming, self.results, self.reviews):
            rows.prefetch(self.session, wanted)
        self.spine.prefetch(self.session, spine)

    def log_person(self, token: str, version: int, payload: str) -> None:
        """A spine person's new version goes into the spine log at the next flush."""
        self._log.append((spine_log.PERSON, token, version, payload))

    def history(self, values: dict[str, Any]) -> None:
        """A spine person's version for the history; a version already there (a rotation's
        re-encode of it) is left as it is."""
        self._appended[t.spine_history].append(values)

    def audit(self, values: dict[str, Any]) -> None:
        self._appended[t.audit].append(values)

    def flush(self) -> None:
        """Write the run's changes (inside the caller's transaction)."""
        if self._log:
            positions = spine_log.append(self.session, self._log)
            for (_, token, _, _), position in zip(self._log, positions, strict=True):
                assert token is not None
                self.positions[token] = position
                self.spine.put(self.session, token, {"position": position})
            self._log.clear()
        for rows in (self.spine, self.incoming, self.results, self.reviews):
            rows.flush(self.session)
        for table, appended in self._appended.items():
            if appended:
                stmt = insert(table)
                if table is t.spine_history:
                    stmt = insert_for(self.session, table).on_conflict_do_nothing()
                self.session.execute(stmt, appended)
                appended.clear()
