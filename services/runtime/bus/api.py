"""The bus port: the one small interface every service publishes and consumes through.

Two adapters implement it (``kafka`` on kafka-python, ``embedded`` on the local SQL
database) and one contract suite (``tests/contract/bus``) holds them to the same behaviour:
per-key ordering, consumer groups sharing partitions, committed offsets that survive a
crash, redelivery of uncommitted messages, headers round-tripping, time-based retention
(``retention.ms``), and a consumer group's lag read the same way on each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "Bus",
    "BusError",
    "Consumer",
    "Headers",
    "Message",
    "PartitionLag",
    "Producer",
    "TopicSpec",
]

Headers = tuple[tuple[str, bytes], ...]


class BusError(RuntimeError):
    """A bus operation failed (broker unreachable, publish not acknowledged, ...)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One record read from a topic partition; ``offset`` is its position in that partition."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (Kafka allows repeats; the newest wins)."""
        for k, v in reversed(self.headers):
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What a backend needs to create a topic: the registry in ``contracts`` supplies these."""

    name: str
    partitions: int = 3
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far a consumer group is behind on one partition.

    ``start`` and ``end`` are the partition's first retained offset and the offset its next
    record will get; ``committed`` is the group's committed offset there, ``None`` if it has
    committed nothing (a new member then starts at ``start``, as ``auto_offset_reset`` is
    earliest on both backends).
    """

    topic: str
    partition: int
    start: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        """Records the group has yet to commit: a committed offset below ``start`` (records
        removed by retention) counts from ``start``, since that is where reading resumes."""
        position = self.start if self.committed is None else max(self.committed, self.start)
        return max(0, self.end - position)


@runtime_checkable
class Producer(Protocol):
    """Publishes records. ``publish`` may buffer; ``flush`` returns once all are durable."""

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None = None,
    ) -> None: ...

    def flush(self, timeout_s: float | None = None) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Consumer(Protocol):
    """A member of a consumer group; offsets are committed only when ``commit`` is called."""

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]: ...

    def commit(self, messages: Sequence[Message]) -> None:
        """Mark ``messages`` processed: for each partition, the committed offset becomes
        the highest offset among them plus one."""

    def seek_to_committed(self) -> None:
        """Forget what was polled but not committed, so it is delivered again (used after a
        handler failure, to retry from the last commit)."""

    def assignment(self) -> frozenset[tuple[str, int]]: ...

    def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A backend: makes producers and consumers and administers topics."""

    name: str

    def producer(self) -> Producer: ...

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer: ...

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create topics that do not exist yet; existing ones are left as they are."""

    def consumer_lag(self, group_id: str, topics: Sequence[str]) -> list[PartitionLag]:
        """The lag of ``group_id`` on every partition of ``topics``, sorted by topic and
        partition; read-only (joins no group, commits nothing). A topic that does not exist
        has no partitions, so no rows."""

    def close(self) -> None: ...
