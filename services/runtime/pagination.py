"""The one way fjo's list endpoints page: a keyset cursor (ingest's ``GET /v1/deliveries``).

A page is ``{"items": [...], "next_cursor": "..."}``; ``next_cursor`` is absent (null) on the
last page, and the client passes it back unchanged as ``?cursor=`` with the same ``limit``.
The cursor is opaque to clients: the keyset position (the sort key's values of the page's
last row) as URL-safe base64, so a route can change its sort key without changing its
parameters. A cursor that does not decode is the client's error: answer 400 with the problem
``problem_type(INVALID_CURSOR)``.

A route adopts it with ``Page[ItemModel]`` as its response model (subclassed to keep a named
schema), ``limit: PageLimit`` and ``cursor: PageCursor`` as its query parameters, and
``encode_cursor``/``decode_cursor`` around its keyset query.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

__all__ = [
    "INVALID_CURSOR",
    "Page",
    "PageCursor",
    "PageLimit",
    "decode_cursor",
    "encode_cursor",
]

INVALID_CURSOR = "invalid-cursor"
"""The problem slug of a cursor that is not one this API made."""

PageLimit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
PageCursor = Annotated[str | None, Query(description="From the previous page.")]
_SEPARATOR = "|"
Item = TypeVar("Item")


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
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ValueError("not a valid cursor") from exc
    position = tuple(text.split(_SEPARATOR))
    if len(position) != parts:
        raise ValueError("not a valid cursor")
    return position
