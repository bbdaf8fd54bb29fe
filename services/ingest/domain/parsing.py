"""From delivery bytes to candidate records: NDJSON lines, CSV rows or JSON-array items.

Each candidate keeps its line number (CSV: the line its row starts on; JSON batch: its
1-based position in the array) and its original text, so a rejected record can be
quarantined as sent and reported by where it is, never by what it holds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "TOO_DEEP",
    "Candidate",
    "DeliveryFormat",
    "FormatError",
    "ParseProblem",
    "parse_csv",
    "parse_json_items",
    "parse_ndjson",
]


class DeliveryFormat(StrEnum):
    """How a delivery's records are framed."""

    NDJSON = "ndjson"
    CSV = "csv"
    JSON = "json"


class FormatError(Exception):
    """The delivery as a whole cannot be read (e.g. a CSV without a usable header row)."""


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why a line is not even a record: where (``loc``) and what, without the value."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


TOO_DEEP = ParseProblem((), "JSON nested too deeply to be a record", "json_too_deep")
"""A line whose JSON nests deeper than the parser goes."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One record as sent: its line, original text, and its data or why it has none."""

    line: int
    raw: str
    data: dict[str, Any] | None
    problem: ParseProblem | None = None


def _decode(raw: bytes, line: int) -> tuple[str, ParseProblem | None]:
    if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.rstrip(b"\r\n")
    try:
        return text.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        # Keep the bytes for quarantine, replacing what cannot be decoded.
        problem = ParseProblem(
            (), f"line is not valid UTF-8 (byte {exc.start + 1})", "encoding_invalid"
        )
        return text.decode("utf-8", errors="replace"), problem


def parse_ndjson(lines: Iterable[bytes]) -> Iterator[Candidate]:
    """One candidate per non-blank line; blank lines (e.g. a final newline) are not records."""
    for number, raw in enumerate(lines, start=1):
        text, problem = _decode(raw, number)
        if not text.strip():
            continue
        if problem is not None:
            yield Candidate(number, text, None, problem)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Candidate(
                number,
                text,
                None,
                ParseProblem(
                    (), f"not valid JSON: {exc.msg} at column {exc.colno}", "json_invalid"
                ),
            )
            continue
        except RecursionError:
            # The parser's depth is bounded by the interpreter's recursion limit; a record
            # nests three deep, so such a line is hostile or broken, not a record.
            yield Candidate(number, text, None, TOO_DEEP)
            continue
        if not isinstance(value, dict):
            yield Candidate(
                number,
                text,
                None,
                ParseProblem((), "a record must be a JSON object", "json_not_object"),
            )
            continue
        yield Candidate(number, text, value)


def parse_json_items(items: Iterable[Any]) -> Iterator[Candidate]:
    """One candidate per item of a JSON array; ``line`` is the item's 1-based position."""
    for number, item in enumerate(items, start=1):
        raw = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        if not isinstance(item, dict):
            yield Candidate(
                number,
                raw,
                None,
                ParseProblem((), "a record must be a JSON object", "json_not_object"),
            )
            continue
        yield Candidate(number, raw, item)


class _Feed:
    """Hands decoded lines to ``csv.reader`` and remembers them, to rebuild each row's text."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self.number = 0
        self.seen: list[str] = []
        self.problem: ParseProblem | None = None

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.number += 1
        text, problem = _decode(raw, self.number)
        if problem is not None and self.problem is None:
            self.problem = problem
        self.seen.append(text)
        return text + "\n"


def parse_csv(
    lines: Iterable[bytes], *, list_fields: frozenset[str] = frozenset(), max_field: int = 1 << 20
) -> Iterator[Candidate]:
    """One candidate per CSV row after the header; a row may span lines inside quotes.

    Columns map to fields by header name; ``a.b`` names a nested field; an empty cell is an
    absent value; a column named in ``list_fields`` holds ``|``-separated items.
    """
    csv.field_size_limit(max(max_field, 1024))
    feed = _Feed(lines)
    reader = csv.reader(feed, strict=True)
    header: list[str] | None = None
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                raise FormatError(f"CSV header is not readable: {exc}") from None
            raw = "\n".join(feed.seen)
            yield Candidate(start, raw, None, ParseProblem((), f"CSV syntax: {exc}", "csv_syntax"))
            feed.seen.clear()
            feed.problem = None
            start = feed.number + 1
            continue
        raw = "\n".join(feed.seen)
        problem = feed.problem
        feed.seen.clear()
        feed.problem = None
        line, start = start, feed.number + 1
        if header is None:
            header = [name.strip() for name in row]
            if not row or any(not name for name in header) or len(set(header)) != len(header):
                raise FormatError("CSV header must name every column once")
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if problem is not None:
            yield Candidate(line, raw, None, problem)
        elif len(row) != len(header):
            yield Candidate(
                line,
                raw,
                None,
                ParseProblem(
                    (), f"row has {len(row)} fields, the header has {len(header)}", "csv_columns"
                ),
            )
        else:
            yield Candidate(line, raw, _row_to_record(header, row, list_fields))


def _row_to_record(
    header: list[str], row: list[str], list_fields: frozenset[str]
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=True):
        if cell == "":
            continue
        value: Any = (
            [item for item in cell.split("|") if item != ""] if name in list_fields else cell
        )
        target = record
        *parents, leaf = name.split(".")
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[leaf] = value
    return record
