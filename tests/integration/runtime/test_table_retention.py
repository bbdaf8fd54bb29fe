"""The retention job of ingest's, pseudonymise's and link's own tables, on each service's
migrated schema, on SQLite and PostgreSQL: rows past their period go, younger ones and the
tables kept until erasure stay, a second run deletes nothing."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select
from typer.testing import CliRunner

from contracts.services import Service
from contracts.topics import topic, topics_consumed_by
from fjo.cli import app
from services import catalogue
from services.ingest.config import IngestSettings
from services.ingest.retention import run_retention as ingest_retention
from services.ingest.storage.models import AcceptedRecord, Delivery, DeliveryError
from services.link import storage as link_tables
from services.link.config import LinkSettings
from services.link.retention import run_retention as link_retention
from services.pseudonymise.config import PseudonymiseSettings
from services.pseudonymise.retention import run_retention as pseudonymise_retention
from services.pseudonymise.vault import progress, vault
from services.runtime.db import make_engine
from services.runtime.delivery import processed_messages
from services.runtime.retention import RetentionRefused, marker_floor_days

NOW = datetime(2026, 6, 1, 3, 17, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def migrated(service: Service, url: str) -> None:
    catalogue.entry(service).migrate(url)


def put(url: str, table: Table, rows: list[dict[str, Any]]) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), rows)
    finally:
        engine.dispose()


def column(url: str, table: Table, name: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(table.c[name])).scalars())
    finally:
        engine.dispose()


def count(url: str, table: Table) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def delivery(i: int, updated: datetime) -> dict[str, Any]:
    return {
        "id": f"d-{i}",
        "source": "cafcass",
        "record_type": "case",
        "format": "ndjson",
        "idempotency_key": f"key-{i}",
        "content_sha256": f"{i:064d}",
        "status": "complete",
        "body_bytes": 10,
        "received": 2,
        "accepted": 1,
        "rejected": 1,
        "duplicates": 0,
        "errors_omitted": 0,
        "failure": None,
        "created_at": updated,
        "updated_at": updated,
        "completed_at": updated,
    }


def test_ingest_deletes_receipts_past_their_period_in_batches_and_keeps_the_dedup_index(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrated(Service.INGEST, db_url)
    ages = {0: 401, 1: 500, 2: 402, 3: 403, 4: 404, 5: 399, 6: 3}  # five past 400 days
    put(db_url, Delivery.__table__, [delivery(i, days_ago(a)) for i, a in ages.items()])
    put(
        db_url,
        DeliveryError.__table__,
        [
            {"delivery_id": f"d-{i}", "line": 2, "path": "/dob", "message": "bad", "type": "t"}
            for i in ages
        ],
    )
    put(
        db_url,
        AcceptedRecord.__table__,
        [
            {
                "source": "cafcass",
                "record_type": "case",
                "record_id": "r-1",
                "record_version": 1,
                "delivery_id": "d-1",
                "line": 1,
                "accepted_at": days_ago(900),
            }
        ],
    )
    settings = IngestSettings(environment="dev", database_url=db_url, retention={"batch_size": 2})

    with caplog.at_level(logging.INFO, logger="fjo.retention"):
        assert ingest_retention(settings, now=NOW) == {"ingest_deliveries": 5}
    assert column(db_url, Delivery.__table__, "id") == ["d-5", "d-6"]
    assert column(db_url, DeliveryError.__table__, "delivery_id") == ["d-5", "d-6"]
    assert count(db_url, AcceptedRecord.__table__) == 1  # kept until an erasure
    (line,) = [r for r in caplog.records if r.getMessage() == "retention run"]
    assert (line.__dict__["service"], line.__dict__["deleted"]) == (
        "ingest",
        {"ingest_deliveries": 5},
    )
    assert "d-0" not in json.dumps(line.__dict__, default=str)

    assert ingest_retention(settings, now=NOW) == {"ingest_deliveries": 0}  # idempotent


def marker(group: str, key: str, topic_name: str, at: datetime) -> dict[str, Any]:
    return {
        "consumer_group": group,
        "message_key": key,
        "topic": topic_name,
        "partition": 0,
        "offset": 1,
        "outcome": "processed",
        "processed_at": at,
        "reason": None,
    }


def test_pseudonymise_deletes_old_markers_and_progress_and_never_the_vault(
    db_url: str,
) -> None:
    migrated(Service.PSEUDONYMISE, db_url)
    records = "ingest.records.v1"
    put(
        db_url,
        processed_messages,
        [
            marker("pseudonymise", "old", records, days_ago(31)),
            marker("pseudonymise", "young", records, days_ago(29)),
            marker("someone-else", "old", records, days_ago(300)),  # not this group's
        ],
    )
    put(
        db_url,
        progress,
        [
            {"key_version": 2, "shard": "0/1", "phase": "records", "last_token": "t",
             "done": 3, "updated_at": days_ago(91)},
            {"key_version": 3, "shard": "0/1", "phase": "records", "last_token": "t",
             "done": 3, "updated_at": days_ago(1)},
        ],
    )  # fmt: skip
    put(
        db_url,
        vault,
        [
            {"record_token": "tok", "record_version": 1, "record_type": "case",
             "source": "cafcass", "input_event_id": "e", "delivery_id": None, "kek_id": "k1",
             "wrapped_key": b"w", "ciphertext": b"c", "stored_at": days_ago(3000)},
        ],
    )  # fmt: skip
    settings = PseudonymiseSettings(environment="dev", database_url=db_url)

    assert pseudonymise_retention(settings, now=NOW) == {
        f"processed_messages[{records}]": 1,
        "pseudonymise_reencode_progress": 1,
    }
    assert column(db_url, processed_messages, "message_key") == ["old", "young"]
    assert column(db_url, progress, "key_version") == [3]
    assert count(db_url, vault) == 1
    assert set(pseudonymise_retention(settings, now=NOW).values()) == {0}

    # Markers are what makes a redelivered or replayed record a duplicate: a period shorter
    # than the input topic's and the dead-letter topic's retention is refused.
    short = PseudonymiseSettings(
        environment="dev", database_url=db_url, retention={"markers_days": 13}
    )
    with pytest.raises(RetentionRefused, match="14 days at least"):
        pseudonymise_retention(short, now=NOW)
    assert count(db_url, processed_messages) == 2  # nothing deleted


def review(token: str, state: str, decided: datetime | None) -> dict[str, Any]:
    return {
        "record_token": token,
        "candidate_token": "cand",
        "match_probability": 0.8,
        "state": state,
        "model_version": "m1",
        "created_at": days_ago(1000),
        "decided_at": decided,
        "decided_by": None if decided is None else "reviewer-1",
        "evidence": None,
    }


def test_link_deletes_old_decided_reviews_and_audit_and_keeps_open_ones_and_markers(
    db_url: str,
) -> None:
    migrated(Service.LINK, db_url)
    put(
        db_url,
        link_tables.review_queue,
        [
            review("open-old", "open", None),
            review("accepted-old", "accepted", days_ago(366)),
            review("superseded-old", "superseded", days_ago(400)),
            review("rejected-young", "rejected", days_ago(364)),
        ],
    )
    put(
        db_url,
        link_tables.audit,
        [
            {"at": days_ago(2558), "action": "review-accepted", "record_token": "a",
             "detail": "{}"},
            {"at": days_ago(2000), "action": "review-rejected", "record_token": "b",
             "detail": "{}"},
        ],
    )  # fmt: skip
    put(
        db_url,
        link_tables.processed_messages,
        [marker("link", "old", "pseudonymise.linkage-keys.v1", days_ago(5000))],
    )
    settings = LinkSettings(environment="dev", database_url=db_url)

    assert link_retention(settings, now=NOW) == {"link_review_queue": 2, "link_audit": 1}
    assert column(db_url, link_tables.review_queue, "record_token") == [
        "open-old",
        "rejected-young",
    ]
    assert column(db_url, link_tables.audit, "record_token") == ["b"]
    assert count(db_url, link_tables.processed_messages) == 1
    assert set(link_retention(settings, now=NOW).values()) == {0}


def test_link_keeps_its_markers_because_every_topic_it_reads_is_compacted() -> None:
    consumed = topics_consumed_by(Service.LINK)
    assert consumed and marker_floor_days(consumed, topic("link.dead-letters.v1")) is None
    pseudonymise_in = topics_consumed_by(Service.PSEUDONYMISE)
    assert marker_floor_days(pseudonymise_in, topic("pseudonymise.dead-letters.v1")) == 14


def test_the_command_runs_a_services_retention_and_refuses_one_without_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated(Service.INGEST, sqlite_url)
    put(
        sqlite_url,
        Delivery.__table__,
        [delivery(1, datetime.now(UTC) - timedelta(days=500)), delivery(2, datetime.now(UTC))],
    )
    monkeypatch.setenv("FJO_ENVIRONMENT", "dev")
    monkeypatch.setenv("FJO_INGEST_DATABASE_URL", sqlite_url)
    runner = CliRunner()

    first = runner.invoke(app, ["retention", "run", "--service", "ingest", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"service": "ingest", "deleted": {"ingest_deliveries": 1}}
    again = runner.invoke(app, ["retention", "run", "--service", "ingest"])
    assert again.exit_code == 0 and "ingest_deliveries\tdeleted=0" in again.stdout
    assert column(sqlite_url, Delivery.__table__, "id") == ["d-2"]

    access = runner.invoke(app, ["retention", "run", "--service", "access"])
    assert access.exit_code == 2 and "fjo access retention run" in access.stderr
