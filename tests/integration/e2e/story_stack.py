"""The platform as ``fjo up`` runs it (every role its own process, Kafka + PostgreSQL): what
the end-to-end story test needs to start it, read it and stop it.

The stack gets consumer groups of its own, committed at the end of every topic before its
workers start (they see nothing older), databases of its own (dropped afterwards) and its own
dev keys; everything read back is filtered by this run's record tokens, delivery ids or
consumer groups, and topics are read only from the offsets they had when the stack started.

That is enough for reading, not for running on a broker where another pseudonymise worker
(another test's) consumes ``ingest.records.v1`` at the same time: pseudonymise derives its
output event ids from the input's, so both workers publish messages with the same event ids
for this run's records, under different keys, and link and access apply whichever arrives
first and skip the other as a duplicate (their exactly-once marker is the event id). The
story test therefore runs this stack on a broker of its own.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from contracts.topics import TOPICS
from fjo.stack.kafka import KafkaStack
from fjo.stack.processes import REPO_ROOT, base_env, fjo_command
from services.runtime.bus.api import Message
from services.runtime.delivery import DLQ_CONSUMER_GROUP

__all__ = ["KafkaStoryStack", "header", "wait_until"]


def header(record: Message, name: str) -> str:
    """A record's header as text ("" when absent)."""
    return (record.header(name) or b"").decode("utf-8", errors="replace")


def wait_until(
    what: str,
    done: Callable[[], bool],
    progress: Callable[[], Any],
    *,
    timeout_s: float,
    stall_s: float = 90.0,
    problems: Callable[[], list[str]] = list,
) -> None:
    """Poll ``done`` (a hang guard, not a timing assertion): fail with ``progress()`` when it
    never holds, when progress stood still for ``stall_s``, or as soon as ``problems()`` names
    one (a process that exited)."""
    deadline = time.monotonic() + timeout_s
    last, since = progress(), time.monotonic()
    while not done():
        now = time.monotonic()
        if found := problems():
            raise AssertionError(f"{what}: {found}; progress: {progress()}")
        current = progress()
        if current != last:
            last, since = current, now
        elif now - since > stall_s:
            raise AssertionError(f"{what}: no progress for {stall_s:.0f} s; stuck at {current}")
        if now > deadline:
            raise AssertionError(f"{what}: not done in {timeout_s:.0f} s; progress: {current}")
        time.sleep(0.5)


@dataclass
class KafkaStoryStack(KafkaStack):
    """``fjo.stack.kafka.KafkaStack`` (every role its own ``fjo serve`` process on Kafka and
    PostgreSQL, with consumer groups, databases and keys of its own) and what the story test
    reads back from it."""

    label: str = "fjo-e2e"

    def log_tails(self, lines: int = 4, width: int = 400) -> str:
        """The last lines of every process's log, for a failure message (the state dir is
        a tmp dir that later pytest runs may remove)."""
        out = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(line[:width] for line in tail))
        return "\n".join(out)

    def tokens(self, service: str, table: str) -> set[str]:
        return {r[0] for r in self.rows(service, f"SELECT record_token FROM {table}")}

    def dump(self, service: str) -> bytes:
        """Every row of every table of ``service``'s database, as JSON lines."""
        meta = sa.MetaData()
        engine = sa.create_engine(self.database_url(service))
        try:
            meta.reflect(engine)
            with engine.connect() as conn:
                return "\n".join(
                    json.dumps([list(row) for row in conn.execute(sa.select(table))], default=str)
                    for table in meta.sorted_tables
                ).encode()
        finally:
            engine.dispose()

    def audit_verify(self) -> dict[str, Any]:
        """``fjo audit verify --json`` as an operator runs it, with access's own settings."""
        done = subprocess.run(
            [*fjo_command(), "audit", "verify", "--json"],
            cwd=REPO_ROOT,
            env=base_env() | self.env("access"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(
                f"fjo audit verify printed nothing ({done.returncode}): {done.stderr}"
            )
        return {"exit_code": done.returncode, **json.loads(lines[-1])}

    def dead_letters(self) -> list[Message]:
        """Dead letters this stack's workers wrote (their consumer group is in the header)."""
        ours = set(self.groups.values())
        return [
            record
            for topic in sorted({d for t in TOPICS for d in t.dead_letter_topics})
            for record in self.read(topic)
            if header(record, DLQ_CONSUMER_GROUP) in ours
        ]
