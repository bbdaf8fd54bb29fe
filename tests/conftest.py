"""Session-wide fixtures for the real services `make test` provisions.

* `kafka_bootstrap` / `postgres_url`: addresses from FJO_TEST_KAFKA_BOOTSTRAP and
  FJO_TEST_POSTGRES_URL (fail under CI=true when missing, skip elsewhere; see tests/_services.py).
* `fresh_postgres_db`: a factory; each call creates an empty, uniquely named database on the
  test server and returns its URL. All are dropped after the test.
* `sqlite_url`: a SQLite file URL in the test's tmp_path.
* `db_url`: parametrised over ["sqlite", "postgres"]: a fresh empty database of each kind, so
  storage tests run on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._services import (
    create_database,
    drop_database,
    kafka_bootstrap_from_env,
    postgres_url_from_env,
)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address ("127.0.0.1:<port>") of the test Kafka broker."""
    return kafka_bootstrap_from_env()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the test PostgreSQL server's `postgres` database (admin use only)."""
    return postgres_url_from_env()


@pytest.fixture
def fresh_postgres_db(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Factory: `url = fresh_postgres_db()` creates an empty database; dropped after the test."""
    created: list[str] = []

    def make() -> str:
        url = create_database(postgres_url)
        created.append(url)
        return url

    yield make
    for url in reversed(created):
        drop_database(postgres_url, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new SQLite database file in this test's tmp_path."""
    return f"sqlite+pysqlite:///{tmp_path / 'fjo.db'}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    make: Callable[[], str] = request.getfixturevalue("fresh_postgres_db")
    return make()
