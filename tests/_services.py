"""Helpers for tests that need the real services `make test` provisions.

`make test` (scripts/with-services.sh) starts Apache Kafka and PostgreSQL and exports
FJO_TEST_KAFKA_BOOTSTRAP and FJO_TEST_POSTGRES_URL. When a variable is missing:

* under CI (CI=true) the test fails: CI must never pass by not testing;
* elsewhere the test is skipped with a reason naming the variable and how to set it, so a
  developer can run the unit tests without Java or PostgreSQL.

When a variable is set but nothing answers at that address, the test fails everywhere.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import sqlalchemy as sa
from _pytest.outcomes import skip as _skip
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

KAFKA_ENV = "FJO_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV = "FJO_TEST_POSTGRES_URL"

_HOW = (
    "run `make test`, or `make services-up` and export FJO_TEST_KAFKA_BOOTSTRAP=$(cat "
    "var/kafka/bootstrap) FJO_TEST_POSTGRES_URL=$(cat var/postgres/url)"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_service(name: str, env_var: str) -> str:
    """The value of `env_var`; fail under CI, skip elsewhere, when it is not set."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return value
    unavailable(f"{name} is not available: {env_var} is not set ({_HOW})")
    raise AssertionError("unreachable")  # pragma: no cover


def unavailable(message: str) -> None:
    """Something a test needs is missing: a failure under CI, a skip with the reason elsewhere."""
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    _skip(message)


def check_reachable(name: str, env_var: str, host: str, port: int, timeout: float = 5.0) -> None:
    """Fail (never skip) when the configured service does not accept TCP connections."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        error = exc
    pytest.fail(
        f"{name}: {env_var} points at {host}:{port} but nothing answers there ({error}); "
        "is the service still running?",
        pytrace=False,
    )


def kafka_bootstrap_from_env() -> str:
    bootstrap = require_service("Kafka", KAFKA_ENV)
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    check_reachable("Kafka", KAFKA_ENV, host or "127.0.0.1", int(port))
    return bootstrap


def postgres_url_from_env() -> str:
    url = require_service("PostgreSQL", POSTGRES_ENV)
    parsed = make_url(url)
    check_reachable("PostgreSQL", POSTGRES_ENV, parsed.host or "127.0.0.1", parsed.port or 5432)
    return url


def admin_engine(server_url: str) -> sa.Engine:
    """An AUTOCOMMIT engine without a pool, for CREATE/DROP DATABASE."""
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def create_database(server_url: str, prefix: str = "fjo_test") -> str:
    """Create a uniquely named, empty database; return its URL (same server and user)."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop the database of `database_url`, disconnecting any sessions still open on it."""
    name = make_url(database_url).database
    if not name:
        raise ValueError(f"no database name in {database_url!r}")
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def database_exists(server_url: str, name: str) -> bool:
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
    finally:
        engine.dispose()
    return found is not None
