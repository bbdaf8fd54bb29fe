"""Ingest's pure parts: framing limits, line parsing, validation and rate limiting."""

from __future__ import annotations

import hashlib
import json

import pytest

from contracts.records import RecordType, SourceAgency
from services.ingest.domain.framing import BodyTooLarge, FramingGuard, LineTooLong
from services.ingest.domain.parsing import (
    Candidate,
    FormatError,
    parse_csv,
    parse_json_items,
    parse_ndjson,
)
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.domain.validation import (
    Accepted,
    Rejected,
    csv_list_fields,
    source_may_send,
    validate_candidate,
)
from tests.unit.ingest.support import CANARY_SURNAME, child


def _feed_in_pieces(guard: FramingGuard, body: bytes, size: int) -> None:
    for start in range(0, len(body), size):
        guard.feed(body[start : start + size])


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 10_000])
def test_the_framing_guard_finds_an_overlong_line_however_the_body_is_split(piece: int) -> None:
    body = b"a" * 10 + b"\n" + b"b" * 10 + b"\r\n" + b"c" * 12 + b"\n" + b"d\n"
    guard = FramingGuard(max_body_bytes=1000, max_line_bytes=11)

    with pytest.raises(LineTooLong) as caught:
        _feed_in_pieces(guard, body, piece)

    assert caught.value.line == 3


def test_the_framing_guard_finds_a_final_line_without_newline_that_is_too_long() -> None:
    guard = FramingGuard(max_body_bytes=1000, max_line_bytes=5)
    with pytest.raises(LineTooLong):
        guard.feed(b"abc\n123456")


def test_the_framing_guard_refuses_a_body_over_the_limit_and_digests_what_it_saw() -> None:
    body = b"x\n" * 50
    guard = FramingGuard(max_body_bytes=100, max_line_bytes=10)
    _feed_in_pieces(guard, body, 7)
    assert guard.size == 100
    assert guard.hexdigest() == hashlib.sha256(body).hexdigest()
    with pytest.raises(BodyTooLarge):
        guard.feed(b"y")


def test_ndjson_lines_are_numbered_from_one_and_blank_lines_are_not_records() -> None:
    lines = [b'{"a": 1}\n', b"\n", b"   \r\n", b"[1, 2]\n", b"{oops\n", b"\xff\xfe\n", b'{"b":2}']

    candidates = list(parse_ndjson(lines))

    assert [(c.line, c.problem.type if c.problem else None) for c in candidates] == [
        (1, None),
        (4, "json_not_object"),
        (5, "json_invalid"),
        (6, "encoding_invalid"),
        (7, None),
    ]
    assert candidates[0].data == {"a": 1}
    assert candidates[2].raw == "{oops"


def test_a_byte_order_mark_on_the_first_line_is_ignored() -> None:
    (candidate,) = parse_ndjson([b'\xef\xbb\xbf{"a": 1}\n'])
    assert candidate.data == {"a": 1}


def test_csv_rows_nest_dotted_columns_split_list_columns_and_drop_empty_cells() -> None:
    lines = [
        b"record_id,address.postcode,address.line_1,orders_sought,forename\n",
        b"C-1,CF10 1AA,,s31-care|s38-interim-care,\n",
    ]

    (candidate,) = parse_csv(lines, list_fields=frozenset({"orders_sought"}))

    assert candidate.line == 2
    assert candidate.data == {
        "record_id": "C-1",
        "address": {"postcode": "CF10 1AA"},
        "orders_sought": ["s31-care", "s38-interim-care"],
    }


def test_a_csv_row_spanning_lines_keeps_its_first_line_number_and_its_original_text() -> None:
    lines = [b"a,b\n", b'1,"two\n', b'lines"\n', b"3,4\n", b"5\n", b"\n", b'6,"unterminated\n']

    candidates = list(parse_csv(lines))

    assert [(c.line, c.problem.type if c.problem else None) for c in candidates] == [
        (2, None),
        (4, None),
        (5, "csv_columns"),
        (7, "csv_syntax"),
    ]
    assert candidates[0].data == {"a": "1", "b": "two\nlines"}
    assert candidates[0].raw == '1,"two\nlines"'


@pytest.mark.parametrize("header", [b"a,,b\n", b"a,a\n", b"\n"])
def test_a_csv_header_that_does_not_name_each_column_once_is_a_format_error(
    header: bytes,
) -> None:
    with pytest.raises(FormatError):
        list(parse_csv([header, b"1,2\n"]))


def test_json_batch_items_are_numbered_by_position() -> None:
    candidates = list(parse_json_items([{"a": 1}, 2]))
    assert [(c.line, c.problem is None) for c in candidates] == [(1, True), (2, False)]


def _candidate(record: dict) -> Candidate:
    return Candidate(1, json.dumps(record), record)


def test_a_record_without_a_source_is_the_callers_own() -> None:
    record = child(1)
    del record["source"]

    result = validate_candidate(_candidate(record), RecordType.CHILD, SourceAgency.CAFCASS_CYMRU)

    assert isinstance(result, Accepted)
    assert result.record.source is SourceAgency.CAFCASS_CYMRU


def test_a_record_naming_another_source_is_rejected_even_when_otherwise_valid() -> None:
    record = child(1, source="cafcass-england")

    result = validate_candidate(_candidate(record), RecordType.CHILD, SourceAgency.CAFCASS_CYMRU)

    assert isinstance(result, Rejected)
    assert [(e.path, e.type) for e in result.errors] == [("source", "source_mismatch")]


def test_validation_errors_give_paths_and_reasons_but_never_the_values() -> None:
    record = child(1, surname=CANARY_SURNAME + "1", date_of_birth="2999-12-31", extra="x")
    record["address"] = {"postcode": CANARY_SURNAME}

    result = validate_candidate(_candidate(record), RecordType.CHILD, SourceAgency.CAFCASS_CYMRU)

    assert isinstance(result, Rejected)
    paths = {e.path for e in result.errors}
    assert paths == {"surname", "date_of_birth", "extra", "address.postcode"}
    rendered = json.dumps([e.model_dump() for e in result.errors])
    assert CANARY_SURNAME not in rendered and "2999" not in rendered


def test_each_agency_may_send_only_its_own_record_kinds() -> None:
    assert source_may_send(SourceAgency.CAFCASS_CYMRU, RecordType.HEARING)
    assert source_may_send(SourceAgency.WDS, RecordType.SPINE_PERSON)
    assert not source_may_send(SourceAgency.WDS, RecordType.CHILD)
    assert not source_may_send(SourceAgency.CAFCASS_ENGLAND, RecordType.SPINE_PERSON)


def test_csv_list_columns_are_the_contracts_lists_of_plain_values() -> None:
    assert "orders_sought" in csv_list_fields(RecordType.CASE)
    assert "outcomes" not in csv_list_fields(RecordType.CASE)  # a list of objects: NDJSON only
    assert csv_list_fields(RecordType.CHILD) == frozenset()


def test_a_token_bucket_admits_a_burst_then_asks_to_wait_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=0.5, burst=2, clock=lambda: now[0])

    assert limiter.acquire("a") == (True, 0)
    assert limiter.acquire("a") == (True, 0)
    assert limiter.acquire("a") == (False, 2)
    assert limiter.acquire("b") == (True, 0)  # buckets are per partner
    now[0] += 2.0
    assert limiter.acquire("a") == (True, 0)
    assert limiter.acquire("a")[0] is False
