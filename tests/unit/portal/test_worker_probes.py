"""The portal reads each worker's ``/status`` into a report: lag, dead letters and the records
suppressed on purpose, or why the worker said nothing (the browser journey reads real workers)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.portal.workers import WorkerProbes


def _status(suppressed: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "group": "fjo-pseudonymise",
        "topics": ["ingest.records.v1"],
        "lag": {
            "total": 3,
            "partitions": [
                {"topic": "ingest.records.v1", "partition": 0, "committed": 7, "end": 7, "lag": 0},
                {"topic": "ingest.records.v1", "partition": 1, "committed": 4, "end": 7, "lag": 3},
            ],
        },
        "dead_letters": {
            "dead_letter_topic": "pseudonymise.dead-letters.v1",
            "total": 1,
            "by_topic": {"ingest.records.v1": 1},
            "by_reason": {"services.runtime.delivery.PoisonMessage": 1},
        },
    }
    if suppressed is not None:
        body["suppressed"] = suppressed
    return body


def _probes(answers: dict[str, httpx.Response]) -> WorkerProbes:
    def handler(request: httpx.Request) -> httpx.Response:
        return answers[request.url.host]

    urls = {host: f"http://{host}:9000" for host in answers}
    return WorkerProbes(urls, transport=httpx.MockTransport(handler))


def test_a_workers_suppressed_records_are_reported_by_reason() -> None:
    body = _status({"total": 2, "by_reason": {"erased": 2}})
    (report,) = _probes({"pseudonymise": httpx.Response(200, json=body)}).read()
    assert report.problem is None
    assert (report.suppressed, dict(report.suppressed_by_reason)) == (2, {"erased": 2})
    assert (report.lag, report.dead_letters) == (3, 1)
    assert [(t.topic, t.partitions, t.lag, t.behind) for t in report.topics] == [
        ("ingest.records.v1", 2, 3, (1,))
    ]


def test_a_worker_that_does_not_report_suppression_is_not_shown_as_zero() -> None:
    (report,) = _probes({"older": httpx.Response(200, json=_status(None))}).read()
    assert report.problem is None
    assert report.suppressed is None and not report.suppressed_by_reason


def test_a_worker_that_answers_badly_is_a_problem_not_figures() -> None:
    reports = _probes(
        {
            "down": httpx.Response(503),
            "odd": httpx.Response(200, content=json.dumps({"hello": 1}).encode()),
        }
    ).read()
    assert [(r.name, r.problem, r.suppressed) for r in reports] == [
        ("down", "answered 503", None),
        ("odd", "answered something other than a worker status", None),
    ]
