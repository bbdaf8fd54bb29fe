"""The portal's pure helpers: where sign-in may return to, typed table cells, the waterfall,
and the redirect after a form."""

from __future__ import annotations

import pytest

from services.portal.web.context import safe_next, see_other
from services.portal.web.researcher import parse_cells
from services.portal.web.reviewer import waterfall


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/projects/1", "/projects/1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_returns_only_to_a_local_path(asked: str | None, goes: str) -> None:
    assert safe_next(asked) == goes


def test_typed_cells_are_read_and_a_bad_line_is_named() -> None:
    assert parse_cells("2016, female, 25\n\n2017, , 31\n") == [
        {"row": "2016", "col": "female", "count": 25},
        {"row": "2017", "col": None, "count": 31},
    ]
    with pytest.raises(ValueError, match="line 2: the count must be a whole number"):
        parse_cells("a, b, 1\na, b, many")
    with pytest.raises(ValueError, match="line 1: write row, column, count"):
        parse_cells("a, 1")
    with pytest.raises(ValueError, match="at least one cell"):
        parse_cells(" \n")


def test_the_waterfall_runs_from_the_prior_through_each_comparison() -> None:
    bars = waterfall(
        {
            "prior": -10.0,
            "comparisons": [
                {"comparison": "forename", "level": "nickname", "weight": 6.0},
                {"comparison": "household", "level": "else", "weight": -2.0},
            ],
        }
    )
    assert [(b["name"], b["total"], b["for"]) for b in bars] == [
        ("prior", -10.0, False),
        ("forename", -4.0, True),
        ("household", -6.0, False),
    ]
    assert all(0 <= b["left"] <= 100 and b["left"] + b["width"] <= 100.5 for b in bars)
    assert waterfall(None) == []


def test_the_notice_after_a_form_keeps_the_pages_own_query() -> None:
    assert see_other("/review?skip=a", "Match accepted").headers["location"] == (
        "/review?skip=a&notice=Match%20accepted"
    )
    assert see_other("/panel/1", "Done").headers["location"] == "/panel/1?notice=Done"
