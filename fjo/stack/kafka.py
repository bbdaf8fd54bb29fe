"""The platform on Apache Kafka and PostgreSQL, every role its own process (``fjo up``).

``up_stack`` is ``fjo up``: Kafka and PostgreSQL from ``scripts/kafka.sh`` and
``scripts/postgres.sh`` unless addresses are given, a database per service, the registry's
topics, the migrations, then every role. ``KafkaStack`` is the same platform for a run that
shares a broker and a server with others (the end-to-end tests, the pipeline benchmark):
consumer groups of its own committed at the end of every topic before its workers start (so
they see nothing older), databases of its own (dropped afterwards), dev keys of its own, and
what it reads back limited to the offsets written since it started.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.topics import TOPICS
from fjo.stack.api import Offsets
from fjo.stack.processes import (
    REPO_ROOT,
    Echo,
    StackState,
    alive,
    base_env,
    check_roles,
    down_stack,
    exited,
    fjo_command,
    migrate,
    refuse_running,
    run_script,
    stack_roles,
    start_roles,
    state_env,
)
from services import catalogue

if TYPE_CHECKING:
    from services.runtime.bus.api import Message

__all__ = ["KafkaStack", "drop_databases", "ensure_databases", "up_stack"]


def ensure_databases(admin_url: str, prefix: str) -> dict[str, str]:
    """Create ``<prefix>_<service>`` on the server when missing; return each service's URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from contracts.services import SERVICES

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    urls: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for service in SERVICES:
                name = f"{prefix}_{service.value}"
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                urls[service.value] = (
                    make_url(admin_url).set(database=name).render_as_string(hide_password=False)
                )
    finally:
        engine.dispose()
    return urls


def drop_databases(admin_url: str, urls: Iterable[str]) -> None:
    """Drop the databases of ``urls``, disconnecting any session still open on them."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for url in urls:
                name = make_url(url).database
                if name:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def up_stack(
    state_dir: Path,
    *,
    kafka_bootstrap: str | None = None,
    postgres_url: str | None = None,
    db_prefix: str = "fjo_stack",
    ready_timeout_s: float = 120.0,
    echo: Echo = print,
    roles: Sequence[tuple[str, str]] | None = None,
    replicas: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
    dev_key_dir: Path | None = None,
) -> StackState:
    """Start the platform; return what was started (also written to ``state_dir``).

    ``roles`` limits it to some (service, role) pairs of ``stack_roles()`` (e.g. only the
    workers) and ``replicas`` runs some of them as several processes (``{"link-worker": 3}``);
    ``extra_env`` is added to every process's environment (settings such as key files, which
    are not recorded in the state dir: pass them again to ``restart_role``); ``dev_key_dir``
    is where every service keeps its dev keys (default: each service's own default).
    """
    wanted = stack_roles() if roles is None else list(roles)
    check_roles(wanted)
    refuse_running(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state = StackState(dev_key_dir=str(dev_key_dir or ""))
    try:
        if not kafka_bootstrap:
            run_script("kafka.sh", "start")
            kafka_bootstrap = (REPO_ROOT / "var/kafka/bootstrap").read_text().strip()
            state.started_kafka = True
        if not postgres_url:
            run_script("postgres.sh", "start")
            postgres_url = (REPO_ROOT / "var/postgres/url").read_text().strip()
            state.started_postgres = True
        state.kafka_bootstrap, state.postgres_url = kafka_bootstrap, postgres_url
        state.bus = {"backend": "kafka", "kafka_bootstrap": kafka_bootstrap}
        state.save(state_dir)

        state.databases = ensure_databases(postgres_url, db_prefix)
        echo(f"databases: {', '.join(sorted(state.databases.values()))}")
        subprocess.run(
            [*fjo_command(), "topics", "create", "--bootstrap", kafka_bootstrap],
            check=True,
            env=base_env(),
        )
        for service, url in state.databases.items():
            echo(migrate(service, url))
        start_roles(
            state,
            state_dir,
            wanted,
            replicas=replicas,
            extra_env=extra_env,
            ready_timeout_s=ready_timeout_s,
            echo=echo,
        )
        return state
    except BaseException:
        down_stack(state_dir, echo=echo)
        raise


def _worker_services() -> tuple[str, ...]:
    return tuple(s for s, role in stack_roles() if role == catalogue.WORKER)


@dataclass
class KafkaStack:
    """Every role as its own process on a shared Kafka and PostgreSQL, with consumer groups,
    databases and dev keys of this run's own; ``label`` names them (``<label>-<tag>-link``)."""

    state_dir: Path
    bootstrap: str
    postgres_url: str
    label: str = "fjo-run"
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    replicas: Mapping[str, int] = field(default_factory=dict)
    ready_timeout_s: float = 180.0
    name: str = "kafka"
    state: StackState = field(default_factory=StackState)
    start_offsets: Offsets = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    _engines: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()

    @property
    def db_prefix(self) -> str:
        return f"{self.label}_{self.tag}".replace("-", "_")

    @property
    def groups(self) -> dict[str, str]:
        """Each worker's consumer group: this run's own."""
        return {s: f"{self.label}-{self.tag}-{s}" for s in _worker_services()}

    @property
    def key_dir(self) -> Path:
        """The services' dev keys (pseudonymise's master key, link's ALF key)."""
        return self.state_dir / "keys"

    @property
    def issuer_key(self) -> Path:
        """The dev token issuer's key every API of the stack trusts."""
        return self.state_dir / "dev-issuer.pem"

    def extra_env(self) -> dict[str, str]:
        """Settings every process gets beyond the recorded ones: this run's consumer groups."""
        return {f"FJO_{s.upper()}_WORKER_GROUP": g for s, g in self.groups.items()}

    # -- start and stop ---------------------------------------------------------------------

    def up(self) -> KafkaStack:
        """Create the topics, start this run's groups at their ends, start every role."""
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        from services.runtime.bus.kafka import KafkaBus
        from services.runtime.topics import topic_specs

        # A previous run killed hard may have left its processes: stop exactly those.
        down_stack(self.state_dir, stop_services=False, echo=lambda _m: None)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        bus = KafkaBus(self.bootstrap, client_id=f"{self.label}-{self.tag}")
        try:
            bus.create_topics(topic_specs())
        finally:
            bus.close()
        self.start_offsets = self.end_offsets()
        for service, group in self.groups.items():
            topics = {t.name for t in TOPICS if service in t.consumers}
            self._commit(group, {k: o for k, o in self.start_offsets.items() if k[0] in topics})
        self.state = up_stack(
            self.state_dir,
            kafka_bootstrap=self.bootstrap,
            postgres_url=self.postgres_url,
            db_prefix=self.db_prefix,
            ready_timeout_s=self.ready_timeout_s,
            echo=self.log.append,
            replicas=self.replicas,
            extra_env=self.extra_env(),
            dev_key_dir=self.key_dir,
        )
        for service, url in self.state.databases.items():
            self._engines[service] = sa.create_engine(url, poolclass=NullPool)
        return self

    def _commit(self, group: str, offsets: Offsets) -> None:
        """Start ``group`` at these offsets (the topics' ends): it skips the backlog."""
        from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        try:
            tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
            consumer.assign(list(tps))
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in tps.items()})
        finally:
            consumer.close(autocommit=False)

    def down(self) -> list[str]:
        """Stop every process and drop this run's databases; the pids still running (none,
        normally)."""
        from sqlalchemy.engine import make_url

        from contracts.services import SERVICES

        pids = [sp.pid for sp in self.recorded().processes]
        try:
            down_stack(self.state_dir, stop_services=False, echo=self.log.append)
        finally:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            drop_databases(
                self.postgres_url,
                (
                    make_url(self.postgres_url)
                    .set(database=f"{self.db_prefix}_{s.value}")
                    .render_as_string(hide_password=False)
                    for s in SERVICES
                ),
            )
        return [f"pid {pid}" for pid in pids if alive(pid)]

    def recorded(self) -> StackState:
        """The stack as its state file has it now: a role restarted by ``restart_role`` is
        recorded there with its new pid and port, not in the state ``up`` began with."""
        return StackState.load(self.state_dir) or self.state

    def exited(self) -> list[str]:
        """Processes of the stack that are no longer running."""
        return exited(self.recorded())

    # -- where things are ---------------------------------------------------------------

    def url(self, name: str) -> str:
        """Base URL of an API process, e.g. ``"ingest-api"``."""
        return f"http://127.0.0.1:{self.recorded().port(name)}"

    def pids(self) -> dict[str, int]:
        """Process name -> pid."""
        return {sp.name: sp.pid for sp in self.recorded().processes}

    def database_url(self, service: str) -> str:
        return self.state.databases[service]

    def env(self, service: str) -> dict[str, str]:
        """The settings ``service``'s processes run with (e.g. to run ``fjo audit`` as they)."""
        return state_env(self.state, self.state_dir, service) | self.extra_env()

    def rows(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on ``service``'s database."""
        import sqlalchemy as sa

        with self._engines[service].connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    # -- topics ---------------------------------------------------------------------------

    def end_offsets(self) -> Offsets:
        """Every registry topic's partitions' ends, now."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        try:
            tps = [
                TopicPartition(t.name, p)
                for t in TOPICS
                for p in sorted(consumer.partitions_for_topic(t.name) or ())
            ]
            return {(tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(tps).items()}
        finally:
            consumer.close(autocommit=False)

    def read(
        self,
        topic: str,
        start: Offsets | None = None,
        end: Offsets | None = None,
        *,
        timeout_s: float = 120.0,
    ) -> list[Message]:
        """``topic``'s records (``services.runtime.bus.api.Message``) between two offset
        snapshots: by default from where it stood when the stack started to where it is now."""
        from kafka import KafkaConsumer, TopicPartition

        from services.runtime.bus.api import Message

        start = self.start_offsets if start is None else start
        end = self.end_offsets() if end is None else end
        ranges = {
            TopicPartition(t, p): (start.get((t, p), 0), hi)
            for (t, p), hi in end.items()
            if t == topic and hi > start.get((t, p), 0)
        }
        out: list[Message] = []
        if not ranges:
            return out
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        try:
            consumer.assign(list(ranges))
            for tp, (lo, _hi) in ranges.items():
                consumer.seek(tp, lo)
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < hi for tp, (_lo, hi) in ranges.items()):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not read {topic} to its end in {timeout_s:.0f} s")
                for tp, records in consumer.poll(timeout_ms=500).items():
                    out.extend(
                        Message(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value,
                            tuple((k, bytes(v or b"")) for k, v in r.headers or ()),
                            r.timestamp,
                        )
                        for r in records
                        if r.offset < ranges[tp][1]
                    )
        finally:
            consumer.close(autocommit=False)
        return out

    def lag(self) -> dict[str, int]:
        """Records each of this stack's groups has not committed yet, per topic."""
        from kafka import KafkaConsumer, TopicPartition

        end = self.end_offsets()
        out: dict[str, int] = {}
        for service, group in self.groups.items():
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
            )
            try:
                for t in TOPICS:
                    if service in t.consumers:
                        out[f"{group} <- {t.name}"] = sum(
                            hi - (consumer.committed(TopicPartition(name, p)) or 0)
                            for (name, p), hi in end.items()
                            if name == t.name
                        )
            finally:
                consumer.close(autocommit=False)
        return out
