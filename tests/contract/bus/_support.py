"""Shared helpers for the bus contract suite (also imported by the subprocess helper)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from services.runtime.bus.api import Bus, Consumer, Message
from services.runtime.bus.factory import make_bus

EVENT_TYPE = "test.thing-happened.v1"

effects_metadata = MetaData()
effects = Table(
    "contract_effects",
    effects_metadata,
    # No uniqueness on message_id on purpose: a duplicate effect must be visible.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False),
)


def record_effect(session: Session, message: Message) -> None:
    """The handler under test: one effect row per handled message."""
    session.execute(insert(effects).values(message_id=message.value.decode()))


@dataclass(frozen=True)
class BusSpec:
    """How to build the bus under test, in this process or in a subprocess (as JSON)."""

    backend: str  # "embedded" or "kafka"
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def make(self) -> Bus:
        return make_bus(self.backend, **self.options)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps({"backend": self.backend, "options": self.options, "label": self.label})

    @classmethod
    def from_json(cls, raw: str) -> BusSpec:
        data = json.loads(raw)
        return cls(data["backend"], data["options"], data.get("label", ""))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def consume_until(
    consumer: Consumer, count: int, *, timeout_s: float = 30.0, max_records: int = 500
) -> list[Message]:
    """Poll until at least ``count`` messages arrived or the timeout passed."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(max_records=max_records, timeout_s=0.5)
    return got


def drain(consumer: Consumer, *, quiet_s: float = 1.0) -> list[Message]:
    """Poll until nothing arrives for ``quiet_s`` (catches extra, unexpected deliveries)."""
    got: list[Message] = []
    while True:
        batch = consumer.poll(timeout_s=quiet_s)
        if not batch:
            return got
        got += batch


def wait_for_assignment(
    consumers: Sequence[Consumer], partitions: set[tuple[str, int]], *, timeout_s: float = 30.0
) -> list[Message]:
    """Poll every consumer until each owns some partitions, none overlap and all are owned.

    Returns whatever was delivered meanwhile (tests call this before producing).
    """
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in consumers:
            got += c.poll(timeout_s=0.2)
        owned = [c.assignment() for c in consumers]
        union = frozenset().union(*owned)
        if all(owned) and union == partitions and sum(len(o) for o in owned) == len(union):
            return got
    raise AssertionError(f"group did not settle: {[sorted(c.assignment()) for c in consumers]}")


def ids(messages: Sequence[Message]) -> list[str]:
    return [m.value.decode() for m in messages]
