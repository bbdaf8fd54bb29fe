"""The platform on the embedded default: every role its own process; no Kafka, no PostgreSQL.

The same processes as ``fjo up`` (``fjo serve <service> <role>``, started and stopped by
``fjo.stack.processes`` and recorded in the same ``stack.json``, so ``fjo down --state-dir
<dir>`` stops them too), but each service on its own SQLite file and the bus on the embedded
log in a file of its own: a worker flushes the bus while it holds its own database
transaction, and SQLite has one writer lock per file. Identifiable topics (records in clear)
are in a second bus file, ``identifiable-bus.db``, that only ingest and pseudonymise are
configured with; ``bus.db``, which link and access open, holds none of them.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.services import SERVICES
from fjo.stack.api import Offsets
from fjo.stack.processes import (
    Echo,
    StackState,
    down_stack,
    exited,
    migrate,
    refuse_running,
    service_env,
    stack_roles,
    start_roles,
)
from services import catalogue

if TYPE_CHECKING:
    from services.runtime.bus.api import Message

__all__ = ["EmbeddedStack", "sqlite_rows", "sqlite_url"]


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on a SQLite file, read only; none if the file or table is missing
    (a watcher of a stack that is still starting)."""
    if not path.exists():
        return []
    try:
        return _query(path, sql)
    except sqlite3.Error:
        return []


def _query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on a SQLite file, read only; errors raised (a reader that counts)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


class EmbeddedStack:
    """Start, watch and stop the services on SQLite + the embedded bus under ``state_dir``."""

    name = "embedded"

    def __init__(
        self,
        state_dir: Path,
        *,
        echo: Echo = print,
        replicas: Mapping[str, int] | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.echo = echo
        self.replicas = dict(replicas or {})
        self.bus_path = self.state_dir / "bus.db"
        self.identifiable_bus_path = self.state_dir / "identifiable-bus.db"
        self.state = StackState()

    def database(self, service: str) -> Path:
        """The SQLite file of ``service``."""
        return self.state_dir / f"{service}.db"

    def database_url(self, service: str) -> str:
        return sqlite_url(self.database(service))

    def rows(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` on ``service``'s SQLite file (none if it or the table is missing)."""
        return sqlite_rows(self.database(service), sql)

    @property
    def key_dir(self) -> Path:
        """Where pseudonymise (and link) generate their dev keys."""
        return self.state_dir / "keys"

    @property
    def issuer_key(self) -> Path:
        """The dev token issuer's key every API of the stack trusts."""
        return self.state_dir / "dev-issuer.pem"

    @property
    def groups(self) -> dict[str, str]:
        """Each worker's consumer group: the settings' defaults (the bus file is fresh)."""
        return {s: s for s, role in stack_roles() if role == catalogue.WORKER}

    def env(self, service: str) -> dict[str, str]:
        """The settings of one service's processes."""
        return service_env(
            service,
            database_url=self.database_url(service),
            bus=self._bus_settings(),
            state_dir=self.state_dir,
            dev_key_dir=str(self.key_dir),
        )

    def _bus_settings(self) -> dict[str, str]:
        # ``service_env`` gives the identifiable log only to services whose settings have it.
        return {
            "backend": "embedded",
            "embedded_url": sqlite_url(self.bus_path),
            "embedded_identifiable_url": sqlite_url(self.identifiable_bus_path),
        }

    def bus_file(self, topic: str) -> Path:
        """The bus file that holds ``topic``."""
        from services.runtime.topics import identifiable_topic_names

        identifiable = topic in identifiable_topic_names()
        return self.identifiable_bus_path if identifiable else self.bus_path

    def roles(self) -> list[tuple[str, str]]:
        """(service, role) pairs to run: the catalogue's."""
        return stack_roles()

    def recorded(self) -> StackState:
        """The stack as its state file has it now: a role restarted by ``restart_role`` is
        recorded there with its new pid and port, not in the state ``up`` began with."""
        return StackState.load(self.state_dir) or self.state

    def port(self, name: str) -> int:
        """The port of a started process, e.g. ``"ingest-api"``."""
        return self.recorded().port(name)

    def url(self, name: str) -> str:
        """Base URL of an API process, e.g. ``"ingest-api"``."""
        return f"http://127.0.0.1:{self.port(name)}"

    def pids(self) -> dict[str, int]:
        """Process name -> pid."""
        return {sp.name: sp.pid for sp in self.recorded().processes}

    def up(self, *, ready_timeout_s: float = 120.0) -> EmbeddedStack:
        """Migrate every database, create the topics, start every role and wait for /readyz."""
        from services.runtime.bus.factory import make_bus
        from services.runtime.topics import topic_specs

        refuse_running(self.state_dir)
        if self.state_dir.exists():  # a stopped stack's files: start from nothing
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        self.state = StackState(
            databases={s.value: self.database_url(s.value) for s in SERVICES},
            bus=self._bus_settings(),
            dev_key_dir=str(self.key_dir),
        )
        self.state.save(self.state_dir)
        try:
            bus = make_bus(
                "embedded",
                database_url=sqlite_url(self.bus_path),
                identifiable_url=sqlite_url(self.identifiable_bus_path),
            )
            try:
                bus.create_topics(topic_specs())
            finally:
                bus.close()
            for service, url in self.state.databases.items():
                migrate(service, url)
            start_roles(
                self.state,
                self.state_dir,
                self.roles(),
                replicas=self.replicas,
                ready_timeout_s=ready_timeout_s,
                echo=self.echo,
            )
        except BaseException:
            self.down()
            raise
        return self

    def exited(self) -> list[str]:
        """Processes that have exited since they started (empty: all running)."""
        return exited(self.recorded())

    def down(self) -> int:
        """Stop every process this stack started; how many were stopped."""
        return down_stack(self.state_dir, stop_services=False, echo=lambda _m: None)

    # -- the bus --------------------------------------------------------------------------

    def end_offsets(self) -> Offsets:
        """Every topic's partitions' ends (high-water marks), now (of both bus files)."""
        offsets: Offsets = {}
        for path in (self.bus_path, self.identifiable_bus_path):
            rows = _query(path, "SELECT topic, partition, next_offset FROM bus_partitions")
            offsets |= {(t, int(p)): int(o) for t, p, o in rows}
        return offsets

    def read(
        self, topic: str, start: Offsets | None = None, end: Offsets | None = None
    ) -> list[Message]:
        """``topic``'s records between two offset snapshots (default: all of it, up to now)."""
        from services.runtime.bus.api import Message
        from services.runtime.bus.embedded import decode_headers

        start = start or {}
        end = self.end_offsets() if end is None else end
        out: list[Message] = []
        for (t, p), hi in sorted(end.items()):
            if t != topic:
                continue
            rows = _query(
                self.bus_file(t),
                'SELECT "offset", key, value, headers, timestamp_ms FROM bus_records WHERE '
                'topic = ? AND partition = ? AND "offset" >= ? AND "offset" < ? ORDER BY "offset"',
                (t, p, start.get((t, p), 0), hi),
            )
            out.extend(
                Message(t, p, int(o), k, bytes(v), decode_headers(h), int(ts))
                for o, k, v, h, ts in rows
            )
        return out
