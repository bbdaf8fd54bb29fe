"""`make test` runs two xdist workers: what shares the test broker must stay in one group."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_BROKER, xdist_group_of

SHARED_PARAMS = {"kafka", "kafka-postgres"}
"""The shared broker's parameter values of the ``platform``, ``bus_spec`` and ingest stacks."""


def test_tests_on_the_shared_broker_run_in_one_group_and_own_brokers_do_not(
    request: pytest.FixtureRequest,
) -> None:
    items = request.session.items
    for item in items:
        group = xdist_group_of(item)
        own = item.get_closest_marker("own_broker") is not None
        if "kafka_bootstrap" in item.fixturenames and not own:
            assert group == SHARED_BROKER, item.nodeid
        callspec = getattr(item, "callspec", None)
        values = {str(v) for v in callspec.params.values()} if callspec else set()
        if values & SHARED_PARAMS and not own:
            assert group == SHARED_BROKER, item.nodeid
        if own:
            assert group == item.nodeid.split("::", 1)[0], item.nodeid
        if item.nodeid.startswith("tests/browser/"):
            assert group == "browser", item.nodeid
    assert xdist_group_of(request.node) == "tests/unit/test_xdist_groups.py"
