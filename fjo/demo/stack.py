"""The platform on the embedded default: each service role its own process; no Kafka, no PostgreSQL.

The same processes as ``fjo up`` (``fjo serve <service> <role>``, started and stopped with
``fjo.deploy_cli``'s helpers and recorded in the same ``stack.json``, so ``fjo down
--state-dir <dir>`` stops them too), but each service on its own SQLite file and the bus on
the embedded log in a file of its own: a worker flushes the bus while it holds its own
database transaction, and SQLite has one writer lock per file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fjo.deploy_cli import (
    SERVICE_NAMES,
    StackProcess,
    StackState,
    _fjo_command,
    _free_port,
    _is_ours,
    _service_env,
    _wait_ready,
    down_stack,
    migrate_service,
    spawn,
    stack_roles,
)

__all__ = ["EmbeddedStack", "sqlite_rows", "sqlite_url"]


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on a SQLite file, read only; none if the file or table is missing."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        return list(conn.execute(sql))
    except sqlite3.Error:
        return []
    finally:
        conn.close()


class EmbeddedStack:
    """Start, watch and stop the services on SQLite + the embedded bus under ``state_dir``."""

    def __init__(self, state_dir: Path, *, echo: Callable[[str], Any] = print) -> None:
        self.state_dir = state_dir.resolve()
        self.echo = echo
        self.bus_path = self.state_dir / "bus.db"
        self.state = StackState()

    def database(self, service: str) -> Path:
        """The SQLite file of ``service``."""
        return self.state_dir / f"{service}.db"

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

    def env(self, service: str) -> dict[str, str]:
        """The environment of one service's processes."""
        p = f"FJO_{service.upper()}_"
        env = _service_env(
            service,
            database_url=sqlite_url(self.database(service)),
            bootstrap="",
            state_dir=self.state_dir,
        )
        env.pop(f"{p}BUS__KAFKA_BOOTSTRAP", None)
        env[f"{p}BUS__BACKEND"] = "embedded"
        env[f"{p}BUS__EMBEDDED_URL"] = sqlite_url(self.bus_path)
        env[f"{p}DEV_KEY_DIR"] = str(self.key_dir)
        return env

    def roles(self) -> list[tuple[str, str]]:
        """(service, role) pairs to run: the roles each service's entrypoints offer."""
        return stack_roles()

    def port(self, name: str) -> int:
        """The port of a started process, e.g. ``"ingest-api"``."""
        for sp in self.state.processes:
            if sp.name == name:
                return sp.port
        raise KeyError(name)

    def up(self, *, ready_timeout_s: float = 120.0) -> None:
        """Migrate every database, create the topics, start every role and wait for /readyz."""
        from services.runtime.bus.embedded import EmbeddedBus
        from services.runtime.topics import topic_specs

        if (previous := StackState.load(self.state_dir)) and any(map(_is_ours, previous.processes)):
            raise RuntimeError(f"a stack is already running from {self.state_dir}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self.state = StackState(databases={s: sqlite_url(self.database(s)) for s in SERVICE_NAMES})
        self.state.save(self.state_dir)
        try:
            bus = EmbeddedBus(sqlite_url(self.bus_path))
            try:
                bus.create_topics(topic_specs())
            finally:
                bus.close()
            for service in SERVICE_NAMES:
                migrate_service(service, self.state.databases[service])
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
            fjo = _fjo_command()
            started: list[tuple[subprocess.Popen[bytes], StackProcess]] = []
            for service, role in self.roles():
                name = f"{service}-{role}"
                port = _free_port()
                if role == "api":
                    command = [*fjo, "serve", service, "api", "--port", str(port)]
                else:
                    command = [*fjo, "serve", service, "worker", "--probe-port", str(port)]
                log_path = self.state_dir / "logs" / f"{name}.log"
                proc = spawn(command, env=base_env | self.env(service), log_path=log_path)
                sp = StackProcess(name, service, role, proc.pid, port, str(log_path), command)
                self.state.processes.append(sp)
                self.state.save(self.state_dir)
                started.append((proc, sp))
            deadline = time.monotonic() + ready_timeout_s
            for proc, sp in started:
                problem = _wait_ready(proc, sp, deadline)
                if problem:
                    raise RuntimeError(problem)
                self.echo(f"{sp.name}: ready on 127.0.0.1:{sp.port} (pid {sp.pid})")
        except BaseException:
            self.down()
            raise

    def exited(self) -> list[str]:
        """Names of processes that have exited since they started (empty: all running)."""
        return [sp.name for sp in self.state.processes if not _is_ours(sp)]

    def down(self) -> int:
        """Stop every process this stack started; how many were stopped."""
        return down_stack(self.state_dir, stop_services=False, echo=lambda _m: None)
