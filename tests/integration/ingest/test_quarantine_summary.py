"""Operators read what ingest quarantined and why, across partners: counts, error types and
field paths, never a record; on SQLite with the embedded bus and on PostgreSQL with Kafka."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from tests.integration.ingest.conftest import Stack
from tests.unit.ingest.support import AUDIENCE, CANARY_SURNAME, ndjson_delivery


def _push(stack: Stack, body: bytes, source: str) -> dict[str, object]:
    response = httpx.post(
        f"{stack.url}/v1/deliveries",
        params={"record_type": "child"},
        content=body,
        headers={"Content-Type": "application/x-ndjson", **stack.headers(source)},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    receipt: dict[str, object] = response.json()
    return receipt


def _summary(stack: Stack, roles: list[str]) -> httpx.Response:
    token = stack.issuer.mint("ops-test", audience=AUDIENCE, roles=roles)
    return httpx.get(
        f"{stack.url}/v1/quarantine", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_operators_see_the_quarantine_by_partner_and_reason_and_nobody_else_does(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(max_receipt_errors=7)
    receipts = [
        _push(stack, ndjson_delivery(60, bad_every=4, start=9_100_000).body, "cafcass-cymru"),
        _push(stack, ndjson_delivery(30, bad_every=3, start=9_200_000).body, "cafcass-cymru"),
        _push(stack, ndjson_delivery(40, start=9_300_000).body, "cafcass-cymru"),  # all good
    ]
    expected = Counter(
        (e["type"], e["path"])
        for r in receipts
        for e in r["errors"]  # type: ignore[attr-defined]
    )

    assert httpx.get(f"{stack.url}/v1/quarantine", timeout=30).status_code == 401
    partner = httpx.get(f"{stack.url}/v1/quarantine", headers=stack.headers(), timeout=30)
    assert partner.status_code == 403
    assert _summary(stack, ["researcher"]).status_code == 403

    for roles in (["operator"], ["admin"]):
        response = _summary(stack, roles)
        assert response.status_code == 200, response.text
        summary = response.json()
        assert summary["rejected"] == 15 + 10
        assert summary["errors_not_itemised"] == sum(r["errors_omitted"] for r in receipts)  # type: ignore[misc]
        assert summary["errors_not_itemised"] > 0  # the receipts' limit of 7 was passed
        assert summary["sources"] == [
            {"source": "cafcass-cymru", "record_type": "child", "deliveries": 2, "rejected": 25}
        ]
        assert (
            Counter({(r["type"], r["path"]): r["errors"] for r in summary["reasons"]}) == expected
        )
        counts = [r["errors"] for r in summary["reasons"]]
        assert counts == sorted(counts, reverse=True)
        assert CANARY_SURNAME not in response.text and '"line"' not in response.text
