"""The portal's pure helpers: where sign-in may return to, an output's form as the airlock's
request, ACRO's record as tables, the waterfall, and the redirect after a form."""

from __future__ import annotations

import pytest

from services.portal.web.context import safe_next, see_other
from services.portal.web.outputs import acro_checks, acro_outcome, output_source, output_spec
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


def test_an_outputs_form_becomes_the_airlocks_spec_and_source() -> None:
    assert output_spec("table", {"index": "LAW_TYPE, GNDR_CD", "columns": ""}) == {
        "index": ["LAW_TYPE", "GNDR_CD"],
        "columns": [],
    }
    assert output_spec("table", {"index": "A", "values": "AGE", "aggfunc": "mean"}) == {
        "index": ["A"],
        "columns": [],
        "values": "AGE",
        "aggfunc": "mean",
    }
    assert output_spec("regression", {"dependent": "y", "independent": "a,b"}) == {
        "method": "ols",
        "dependent": "y",
        "independent": ["a", "b"],
    }
    assert output_spec("histogram", {"column": "AGE"}) == {"column": "AGE", "bins": 10}
    with pytest.raises(ValueError, match="bins"):
        output_spec("histogram", {"column": "AGE", "bins": "ten"})
    assert output_spec("file", {"index": "ignored"}) == {}
    assert output_source("query:q1") == {"query": "q1"}
    assert output_source("job:j1:table.csv") == {"job": "j1", "file": "table.csv"}
    assert output_source("table:CHILD") == {"table": "CHILD"}
    for bad in ("", "query:", "job:j1", "job::x", "other:1"):
        with pytest.raises(ValueError, match="source"):
            output_source(bad)


def test_acros_record_is_read_as_one_row_per_check_and_a_cell_table() -> None:
    record = {
        "files": [
            {
                "name": "output_0.csv",
                "sdc": {
                    "summary": {"suppressed": False, "negative": 0, "threshold": 2, "p-ratio": 0},
                    "cells": {"threshold": [[0, 0], [1, 0]]},
                },
            }
        ],
        "outcome": {"All": {"C100": "threshold; ", "C2": "ok"}},
    }
    assert acro_checks(record) == [
        {"check": "negative", "flagged": 0, "ok": True},
        {"check": "p-ratio", "flagged": 0, "ok": True},
        {"check": "threshold", "flagged": 2, "ok": False},
    ]
    assert acro_outcome(record) == {
        "columns": ["All"],
        "rows": [("C100", ["threshold; "]), ("C2", ["ok"])],
    }
    assert acro_checks({"status": "review", "type": "custom"}) == []
    assert acro_outcome({"outcome": {}}) is None


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
