"""Session-wide fixtures for the real services `make test` provisions.

* `kafka_bootstrap` / `postgres_url`: addresses from FJO_TEST_KAFKA_BOOTSTRAP and
  FJO_TEST_POSTGRES_URL (fail under CI=true when missing, skip elsewhere; see tests/_services.py).
* `fresh_postgres_db`: a factory; each call creates an empty, uniquely named database on the
  test server and returns its URL. All are dropped after the test.
* `sqlite_url`: a SQLite file URL in the test's tmp_path.
* `db_url`: parametrised over ["sqlite", "postgres"]: a fresh empty database of each kind, so
  storage tests run on both.

`make test` runs the suite on two pytest-xdist workers (``--dist loadgroup``); see
`pytest_collection_modifyitems` for what may run side by side.
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


SHARED_BROKER = "shared-kafka"


def xdist_group_of(item: pytest.Item) -> str:
    """Which tests must run one after another on the same xdist worker.

    Tests on the shared test broker use the registry's topic names and the services' own
    consumer groups, so two at once would share partitions: all of them are one group (they
    already run in sequence without xdist). Tests with brokers of their own (``own_broker``)
    and the rest group by file, which keeps a module's fixtures (a demo run, a portal stack
    for the browser tests) built once.
    """
    on_kafka = item.get_closest_marker("kafka") or "kafka_bootstrap" in item.fixturenames
    if on_kafka and not item.get_closest_marker("own_broker"):
        return SHARED_BROKER
    path = item.nodeid.split("::", 1)[0]
    if path.startswith("tests/browser/"):
        return "browser"  # one portal stack and one Chromium for the session
    return path


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group_of(item)))
