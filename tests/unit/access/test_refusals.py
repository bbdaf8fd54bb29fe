"""Counting refusals per source and window, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.access.domain.refusals import RefusalWindow, reason_key, window_start

T0 = datetime(2026, 3, 2, 9, 0, 17, tzinfo=UTC)


def test_windows_are_fixed_and_aligned() -> None:
    assert window_start(T0, 60) == datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
    assert window_start(T0 + timedelta(seconds=43), 60) == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    assert window_start(T0, 3600) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_first_few_are_audited_in_full_and_the_rest_counted() -> None:
    w = RefusalWindow("address:203.0.113.7", window_start(T0, 60), T0, T0)
    full = [
        w.add(T0 + timedelta(seconds=i), reason_key("auth.authenticate", "x"), burst=3)
        for i in range(10)
    ]
    assert full == [True] * 3 + [False] * 7
    assert w.needs_summary
    summary = w.summary(60)
    assert (summary["refused"], summary["in_full"]) == (10, 3)
    assert summary["first_seen"] == T0.isoformat()
    assert summary["last_seen"] == (T0 + timedelta(seconds=9)).isoformat()
    assert summary["reasons"] == {"auth.authenticate: x": 10}


def test_a_window_with_nothing_only_counted_needs_no_summary() -> None:
    w = RefusalWindow("subject:alice", window_start(T0, 60), T0, T0)
    assert w.add(T0, "project.read: 404", burst=5)
    assert not w.needs_summary


def test_reasons_are_bounded_in_number_and_length() -> None:
    w = RefusalWindow("address:x", T0, T0, T0)
    for i in range(80):
        w.add(T0, reason_key("auth.authenticate", f"reason {i} " + "z" * 300), burst=1)
    assert len(w.reasons) == 51 and w.reasons["other"] == 30
    assert max(len(r) for r in w.reasons) <= 120
