"""``fjo push`` cuts a file into parts, resumes after an interruption, and reports file lines."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fjo.cli import app
from fjo.push_cli import (
    EXIT_RESUMABLE,
    PushError,
    PushInterrupted,
    backoff,
    plan_parts,
    push_file,
)
from services.runtime.auth import DevIssuer
from tests.unit.ingest.support import AUDIENCE, FakeBus, child, csv_body, ndjson_delivery


def _token(issuer: DevIssuer, source: str = "cafcass-cymru") -> str:
    return issuer.mint("push", audience=AUDIENCE, roles=["partner"], source=source)


class Interrupted:
    """A client whose connection drops: before sending part ``fail_at`` (or after the server
    answered it, when ``after_response``)."""

    def __init__(self, client: TestClient, fail_at: int, *, after_response: bool = False) -> None:
        self._client = client
        self._fail_at = fail_at
        self._after = after_response
        self.posts = 0

    def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        self.posts += 1
        if self.posts == self._fail_at:
            if self._after:
                self._client.post(*args, **kwargs)
            raise httpx.ReadError("connection reset (test)")
        return self._client.post(*args, **kwargs)


def _record_ids(bus: FakeBus) -> list[str]:
    return [
        json.loads(m.value)["data"]["record"]["record_id"] for m in bus.log.on("ingest.records.v1")
    ]


def test_a_file_is_cut_at_record_boundaries_into_parts_that_cover_it(tmp_path: Path) -> None:
    delivery = ndjson_delivery(100)
    path = tmp_path / "children.ndjson"
    path.write_bytes(delivery.body)

    plan = plan_parts(path, csv=False, part_bytes=5000)

    assert len(plan.parts) > 3
    assert sum(p.length for p in plan.parts) == len(delivery.body)
    data = delivery.body
    for part in plan.parts:
        assert part.offset == 0 or data[part.offset - 1 : part.offset] == b"\n"
        assert part.first_line == data[: part.offset].count(b"\n") + 1


def test_a_csv_part_repeats_the_header_and_never_splits_a_quoted_record(tmp_path: Path) -> None:
    records = [child(i) for i in range(60)]
    for record in records[::4]:
        record["address"] = {"line_1": "two\nlines", "postcode": "CF10 1AA"}
    path = tmp_path / "children.csv"
    path.write_bytes(csv_body(records))

    plan = plan_parts(path, csv=True, part_bytes=2000)

    data = path.read_bytes()
    assert plan.header == data[: data.index(b"\n") + 1]
    for part in plan.parts:
        body = data[part.offset : part.offset + part.length]
        assert body.count(b'"') % 2 == 0  # quotes balanced: no record cut in half


def test_push_sends_parts_and_reports_the_files_own_line_numbers(
    tmp_path: Path, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(300, bad_every=13)
    path = tmp_path / "children.ndjson"
    path.write_bytes(delivery.body)

    receipt = push_file(
        path,
        source="cafcass-cymru",
        record_type="child",
        url="",
        token=_token(issuer),
        part_bytes=20_000,
        client=client,
    )

    assert receipt["parts"] > 3
    assert receipt["received"] == 300
    assert receipt["accepted"] == delivery.good
    assert receipt["rejected"] == len(delivery.bad)
    assert {e["line"]: e["path"] for e in reversed(receipt["errors"])} == delivery.bad
    assert sorted(_record_ids(bus)) == sorted(set(_record_ids(bus)))


def test_a_csv_push_maps_row_lines_back_to_the_file(
    tmp_path: Path, client: TestClient, issuer: DevIssuer
) -> None:
    records = [child(i) for i in range(80)]
    records[50]["date_of_birth"] = "2999-01-01"
    path = tmp_path / "children.csv"
    path.write_bytes(csv_body(records))

    receipt = push_file(
        path,
        source="cafcass-cymru",
        record_type="child",
        url="",
        token=_token(issuer),
        part_bytes=3000,
        client=client,
    )

    assert receipt["parts"] > 2
    assert (receipt["received"], receipt["accepted"], receipt["rejected"]) == (80, 79, 1)
    assert [(e["line"], e["path"]) for e in receipt["errors"]] == [(52, "date_of_birth")]


def test_an_interrupted_push_resumes_where_it_stopped_and_delivers_nothing_twice(
    tmp_path: Path, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(200, bad_every=17)
    path = tmp_path / "children.ndjson"
    path.write_bytes(delivery.body)
    args = dict(
        source="cafcass-cymru",
        record_type="child",
        url="",
        token=_token(issuer),
        part_bytes=10_000,
        sleep=lambda _s: None,
    )

    broken = Interrupted(client, fail_at=3)
    with pytest.raises(PushError, match="run the same command again"):
        push_file(path, client=broken, retries=0, **args)  # type: ignore[arg-type]
    state = json.loads((tmp_path / "children.ndjson.fjo-push.json").read_text())
    assert sorted(state["done"]) == ["0", "1"]

    resumed = Interrupted(client, fail_at=-1)
    receipt = push_file(path, client=resumed, **args)  # type: ignore[arg-type]

    assert resumed.posts == receipt["parts"] - 2  # the two acknowledged parts are skipped
    assert receipt["received"] == 200
    assert receipt["accepted"] == delivery.good
    assert receipt["rejected"] == len(delivery.bad)
    assert receipt["duplicates"] == 0
    assert len(_record_ids(bus)) == len(set(_record_ids(bus))) == delivery.good
    assert len(bus.log.on("ingest.quarantine.v1")) == len(delivery.bad)


def test_a_part_whose_answer_was_lost_is_resent_and_answered_from_its_receipt(
    tmp_path: Path, client: TestClient, issuer: DevIssuer, bus: FakeBus
) -> None:
    delivery = ndjson_delivery(120, bad_every=10)
    path = tmp_path / "children.ndjson"
    path.write_bytes(delivery.body)

    lost = Interrupted(client, fail_at=2, after_response=True)
    receipt = push_file(
        path,
        source="cafcass-cymru",
        record_type="child",
        url="",
        token=_token(issuer),
        part_bytes=8_000,
        client=lost,
        retries=2,
        sleep=lambda _s: None,  # type: ignore[arg-type]
    )

    assert receipt["accepted"] == delivery.good
    assert receipt["duplicates"] == 0  # the retried part came back as its original receipt
    assert len(_record_ids(bus)) == delivery.good
    assert len(bus.log.on("ingest.quarantine.v1")) == len(delivery.bad)


def test_a_push_as_another_agency_stops_with_the_servers_reason(
    tmp_path: Path, client: TestClient, issuer: DevIssuer
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(3).body)

    with pytest.raises(PushError, match="403 Source not allowed"):
        push_file(
            path,
            source="cafcass-england",
            record_type="child",
            url="",
            token=_token(issuer, "cafcass-cymru"),
            client=client,
        )


class Answers:
    """A client that answers the first posts with ``statuses`` (problem documents), then
    passes on to the real app; it keeps each post's bearer token."""

    def __init__(self, client: TestClient, *statuses: int) -> None:
        self._client = client
        self._statuses = list(statuses)
        self.tokens: list[str] = []

    def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        self.tokens.append(kwargs["headers"]["Authorization"].removeprefix("Bearer "))
        if self._statuses:
            status = self._statuses.pop(0)
            return httpx.Response(status, json={"type": "about:blank", "title": "busy"})
        return self._client.post(*args, **kwargs)


def test_a_token_refused_mid_push_is_read_again_and_the_part_resent_with_the_renewed_one(
    tmp_path: Path, client: TestClient, issuer: DevIssuer
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(40).body)
    # One the server answers 401 to (as it does to an expired one), then the renewed one.
    stale = issuer.mint("push", audience="fjo-access", roles=["partner"], source="cafcass-cymru")
    fresh = _token(issuer)
    handed = iter([stale, fresh, fresh])
    wire = Answers(client)

    receipt = push_file(
        path,
        source="cafcass-cymru",
        record_type="child",
        url="",
        token=lambda: next(handed),
        client=wire,  # type: ignore[arg-type]
        sleep=lambda _s: None,
    )

    assert receipt["accepted"] == 40
    assert wire.tokens[0] == stale and set(wire.tokens[1:]) == {fresh}


def test_a_refused_token_that_is_not_renewed_stops_the_push_as_refused(
    tmp_path: Path, client: TestClient, issuer: DevIssuer
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(3).body)
    other = issuer.mint("push", audience="fjo-access", roles=["partner"], source="cafcass-cymru")
    wire = Answers(client)

    with pytest.raises(PushError, match="401") as stopped:
        push_file(
            path,
            source="cafcass-cymru",
            record_type="child",
            url="",
            token=lambda: other,
            client=wire,  # type: ignore[arg-type]
            sleep=lambda _s: None,
        )
    assert not isinstance(stopped.value, PushInterrupted)  # rerunning as it is will not help
    assert len(wire.tokens) == 1


def test_retries_back_off_with_jitter_and_a_busy_server_stops_the_push_as_resumable(
    tmp_path: Path, client: TestClient, issuer: DevIssuer
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(3).body)

    def waits(seed: int) -> list[float]:
        slept: list[float] = []
        with pytest.raises(PushInterrupted, match="run the same command again"):
            push_file(
                path,
                source="cafcass-cymru",
                record_type="child",
                url="",
                token=_token(issuer),
                client=Answers(client, 503, 503, 503, 503),  # type: ignore[arg-type]
                retries=3,
                sleep=slept.append,
                rng=random.Random(seed),
            )
        return slept

    first, second = waits(1), waits(2)
    assert len(first) == 3
    for attempt, wait in enumerate(first):
        assert 2.0**attempt / 2 <= wait <= 2.0**attempt
    assert first != second  # two partners cut off together come back apart
    assert all(backoff(12, random.Random(s)) <= 30.0 for s in range(20))


def test_the_command_exits_75_when_it_can_resume_and_2_on_a_missing_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "children.ndjson"
    path.write_bytes(ndjson_delivery(3).body)
    args = ["push", "--source", "cafcass-cymru", "--type", "child", "--token", "t"]
    unreachable = CliRunner().invoke(
        app, [*args, str(path), "--url", "http://127.0.0.1:9", "--retries", "0"]
    )
    assert unreachable.exit_code == EXIT_RESUMABLE == 75, unreachable.output
    missing = CliRunner().invoke(app, [*args, str(tmp_path / "nope.ndjson")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
