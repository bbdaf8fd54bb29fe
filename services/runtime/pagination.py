"""The one way fjo's list endpoints page: a keyset cursor (ingest's ``GET /v1/deliveries``).

A page is ``{"items": [...], "next_cursor": "..."}``; ``next_cursor`` is absent (null) on the
last page, and the client passes it back unchanged as ``?cursor=`` with the same ``limit``.
The cursor is opaque to clients: the keyset position (the sort key's values of the page's
last row) as URL-safe base64, so a route can change its sort key without changing its
parameters. A cursor that does not decode is the client's error: ``InvalidCursor``, which the
shared app factory answers 422 with the problem ``problem_type(INVALID_CURSOR)``.

A route adopts it with ``Page[ItemModel]`` as its response model (subclassed to keep a named
schema), ``limit: PageLimit`` and ``cursor: PageCursor`` as its query parameters, and either
``keyset_page`` (a SQLAlchemy select ordered by a timestamp and an id, never OFFSET) or
``encode_cursor``/``decode_cursor`` around its own keyset query.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import QueryableAttribute

__all__ = [
    "INVALID_CURSOR",
    "InvalidCursor",
    "Page",
    "PageCursor",
    "PageLimit",
    "decode_cursor",
    "encode_cursor",
    "keyset_page",
]

INVALID_CURSOR = "invalid-cursor"
"""The problem slug of a cursor that is not one this API made."""

PageLimit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
PageCursor = Annotated[str | None, Query(description="From the previous page.")]
_SEPARATOR = "|"
Item = TypeVar("Item")


class InvalidCursor(ValueError):
    """A cursor this API did not make (garbled, forged, or another list's)."""


class Page(BaseModel, Generic[Item]):
    """One page of a list, in the list's order."""

    items: list[Item]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


def encode_cursor(*position: str) -> str:
    """An opaque cursor for the keyset ``position`` (the last row's sort-key values)."""
    if any(_SEPARATOR in part for part in position):
        raise ValueError("a cursor's values may not contain '|'")
    text = _SEPARATOR.join(position)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str, parts: int) -> tuple[str, ...]:
    """The ``parts`` values ``encode_cursor`` packed; ValueError when ``value`` is not one."""
    try:
        padded = value + "=" * (-len(value) % 4)
        # validate: b64decode would otherwise drop characters outside the alphabet ("!!" -> "").
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        text = raw.decode()
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor("not a valid cursor") from exc
    position = tuple(text.split(_SEPARATOR))
    # A control character (NUL above all) would reach the database as a bound value, which
    # PostgreSQL refuses with an error of its own: refuse it here, as the client's mistake.
    if len(position) != parts or any(not part.isprintable() for part in position):
        raise InvalidCursor("not a valid cursor")
    return position


def keyset_page(
    fetch: Callable[[Select[*tuple[Any, ...]]], Iterable[Any]],
    query: Select[*tuple[Any, ...]],
    key: tuple[
        QueryableAttribute[datetime] | ColumnElement[datetime],
        QueryableAttribute[str] | ColumnElement[str],
    ],
    *,
    limit: int,
    cursor: str | None,
    item: Callable[[Any], Item | None],
) -> tuple[list[Item], str | None]:
    """One page of ``query`` in ``key`` order (a timestamp, then a unique id, ascending) after
    ``cursor``: its items and the cursor of the next page (None on the last).

    ``fetch`` runs a select (``session.scalars`` for ORM rows, or a function returning Core
    rows); ``item`` turns a row into the page's item, or None for a row the caller may not see
    (per-object authorisation the query cannot express), which is skipped without taking a
    place: a page holds ``limit`` visible items unless it is the last. Raises
    ``InvalidCursor``.
    """
    stamp, ident = key
    # The attributes a row (ORM entity or Core row) carries its key's values under.
    stamp_name, ident_name = str(stamp.key), str(ident.key)
    after = _position(cursor) if cursor else None
    items: list[Item] = []
    last: tuple[datetime, str] | None = None
    while True:
        stmt = query
        if after is not None:
            stmt = stmt.where(or_(stamp > after[0], and_(stamp == after[0], ident > after[1])))
        rows = list(fetch(stmt.order_by(stamp, ident).limit(limit + 1)))
        for row in rows:
            after = (getattr(row, stamp_name), str(getattr(row, ident_name)))
            out = item(row)
            if out is None:
                continue
            if len(items) == limit:  # one more visible item: there is a next page
                assert last is not None
                return items, encode_cursor(last[0].isoformat(), last[1])
            items.append(out)
            last = after
        if len(rows) <= limit:
            return items, None


def _position(cursor: str) -> tuple[datetime, str]:
    stamp, ident = decode_cursor(cursor, 2)
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise InvalidCursor("not a valid cursor") from exc
    # Stored stamps are UTC; SQLite hands them back naive, PostgreSQL aware: compare as UTC.
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)), ident
