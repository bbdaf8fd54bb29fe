"""The shared keyset cursor and problem type scheme: what ingest's list uses, for every API."""

from __future__ import annotations

import pytest

from services.runtime.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from services.runtime.problems import PROBLEM_TYPE_BASE, problem_type, status_problem_type


def test_a_cursor_round_trips_its_keyset_position_and_is_url_safe() -> None:
    cursor = encode_cursor("2026-12-01T00:00:00+00:00", "d-7f3a")
    assert decode_cursor(cursor, 2) == ("2026-12-01T00:00:00+00:00", "d-7f3a")
    assert all(c.isalnum() or c in "-_" for c in cursor)


@pytest.mark.parametrize("bad", ["!!", "bm90IGEgY3Vyc29y", "", "\u00e9"])
def test_a_cursor_this_api_did_not_make_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid cursor"):
        decode_cursor(bad, 2)


def test_a_value_holding_the_separator_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="may not contain"):
        encode_cursor("a|b", "c")


def test_a_page_model_is_items_and_a_next_cursor_absent_on_the_last_page() -> None:
    class Numbers(Page[int]):
        """Numbers."""

    schema = Numbers.model_json_schema()
    assert schema["title"] == "Numbers" and set(schema["properties"]) == {"items", "next_cursor"}
    assert Numbers(items=[1, 2]).model_dump() == {"items": [1, 2], "next_cursor": None}


def test_problem_types_follow_one_scheme_and_a_bad_slug_is_refused() -> None:
    assert problem_type("invalid-cursor") == PROBLEM_TYPE_BASE + "invalid-cursor"
    for bad in ("Invalid", "two words", "trailing-", ""):
        with pytest.raises(ValueError):
            problem_type(bad)


@pytest.mark.parametrize("bad", ["eHwA", "AHx4"])  # "x|\0", "\0|x": NUL never reaches a database
def test_a_cursor_holding_a_control_character_is_refused(bad: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(bad, 2)


def test_a_status_without_a_kind_of_its_own_is_typed_by_its_status_in_the_scheme() -> None:
    assert status_problem_type(404) == problem_type("not-found")
    assert status_problem_type(418) == problem_type("status-418")
