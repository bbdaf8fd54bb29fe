"""Database engines and sessions for SQLite (embedded default) and PostgreSQL (production).

Each service owns its schema; this module only knows how to open an engine that behaves
the same on both: SQLite gets WAL, a busy timeout and foreign keys so that several worker
processes can share one file the way they would share a PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Table, bindparam, create_engine, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "insert_for",
    "is_sqlite",
    "make_engine",
    "make_session_factory",
    "transaction",
    "update_by_key",
]

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """True when the engine (or URL) points at SQLite."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    """An engine for ``url``; SQLite is tuned for several processes writing one file."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (pysqlite's implicit
    # BEGIN would defer locking and break "BEGIN IMMEDIATE" below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that reads then writes can fail
    # with "database is locked" immediately, whatever the busy timeout, when another
    # process wrote in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` that keeps loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def update_by_key(session: Session, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """Update many rows of ``table``, each found by its ``key`` column, in few statements.

    Each dict holds the key and the columns to set. executemany needs the same columns in
    every parameter set, so there is one statement per set of columns.
    """
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(name for name in row if name != key))
        shapes.setdefault(columns, []).append({f"b_{name}": v for name, v in row.items()})
    for columns, params in shapes.items():
        session.execute(
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({name: bindparam(f"b_{name}") for name in columns}),
            params,
        )


def insert_for(session: Session, table: Table) -> Any:
    """The dialect's INSERT of ``table`` (SQLite or PostgreSQL), which has
    ``on_conflict_do_nothing`` and ``on_conflict_do_update``."""
    ins = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    return ins(table)
