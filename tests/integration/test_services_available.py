"""The test harness works: the real Kafka broker and PostgreSQL server answer.

Under CI=true these fail (never skip) when a service is missing or down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from sqlalchemy.engine import make_url

from tests._services import database_exists, drop_database


@pytest.mark.kafka
def test_kafka_answers_describe_cluster(kafka_bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="fjo-harness-test")
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert cluster["cluster_id"]
    assert len(cluster["brokers"]) == 1
    (broker,) = cluster["brokers"]
    assert broker["host"] == "127.0.0.1"
    assert cluster["controller_id"] == broker["broker_id"]


@pytest.mark.kafka
def test_kafka_produce_consume_round_trip(kafka_bootstrap: str) -> None:
    topic = f"fjo-harness-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="fjo-harness-test")
    try:
        admin.create_topics(
            {topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True
        )
    finally:
        admin.close()

    sent = [(f"key-{i % 4}".encode(), f"value-{i}".encode()) for i in range(40)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    try:
        for key, value in sent:
            producer.send(topic, key=key, value=value, headers=[("traceparent", b"00-test")])
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"fjo-harness-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    received: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
    try:
        deadline = time.monotonic() + 60
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend((r.key, r.value, list(r.headers)) for r in records)
        consumer.commit()
    finally:
        consumer.close()

    assert sorted((k, v) for k, v, _ in received) == sorted(sent)
    assert all(headers == [("traceparent", b"00-test")] for _, _, headers in received)
    # Per key, the order of sending is kept.
    for key in {k for k, _ in sent}:
        assert [v for k, v, _ in received if k == key] == [v for k, v in sent if k == key]


@pytest.mark.postgres
def test_postgres_answers_select_version(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")


@pytest.mark.postgres
def test_fresh_postgres_db_is_created_and_dropped(
    postgres_url: str, fresh_postgres_db: Callable[[], str]
) -> None:
    first, second = fresh_postgres_db(), fresh_postgres_db()
    name = make_url(first).database
    assert name and name != make_url(second).database
    assert database_exists(postgres_url, name)

    engine = sa.create_engine(first)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("create table t (id int primary key)"))
            conn.execute(sa.text("insert into t values (1)"))
        # A session still open on the database (as a test's leftover engine would be) must not
        # stop the drop: it is forced, and the server terminates that session.
        open_session = engine.connect()
        assert open_session.execute(sa.text("select count(*) from t")).scalar_one() == 1
        drop_database(postgres_url, first)
        open_session.invalidate()
        open_session.close()
    finally:
        engine.dispose()
    assert not database_exists(postgres_url, name)


def test_db_url_is_a_fresh_empty_database(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("create table t (id integer primary key)"))
            conn.execute(sa.text("insert into t values (1)"))
            assert conn.execute(sa.text("select count(*) from t")).scalar_one() == 1
    finally:
        engine.dispose()
