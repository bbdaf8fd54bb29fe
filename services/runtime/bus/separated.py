"""Two embedded logs behind one bus: identifiable topics in one, every other topic in the other.

On Kafka, ACLs keep identifiable topics (records in clear) from every service but ingest and
pseudonymise. The embedded default has no ACLs, so it keeps them in a file of their own that
only those two services are configured with; link and access get a bus on the shared log
alone, which refuses identifiable topics (``EmbeddedBus.admit``). Pseudonymise reads one log
and writes both, so its bus routes each topic to its log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from services.runtime.bus.api import BusError, Consumer, PartitionLag, TopicSpec
from services.runtime.bus.embedded import EmbeddedBus, EmbeddedProducer

__all__ = ["SeparatedBus", "SeparatedProducer"]


class SeparatedBus:
    """The ``Bus`` port over a shared ``EmbeddedBus`` and an identifiable one."""

    name = "embedded"

    def __init__(self, shared: EmbeddedBus, identifiable: EmbeddedBus) -> None:
        if shared.identifiable or not identifiable.identifiable:
            raise ValueError("give the shared log first, then the identifiable one")
        if shared.url == identifiable.url:
            raise ValueError("identifiable topics need a log of their own, not the shared one")
        self.shared = shared
        self.identifiable = identifiable

    def log_of(self, topic: str) -> EmbeddedBus:
        """The log ``topic`` lives in."""
        return self.identifiable if topic in self.identifiable.identifiable_topics else self.shared

    def topic_meta(self, topic: str) -> object | None:
        """``EmbeddedBus.topic_meta`` of the log that holds ``topic`` (readiness checks)."""
        return self.log_of(topic).topic_meta(topic)

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Each topic on its own log."""
        for log in (self.shared, self.identifiable):
            mine = [spec for spec in specs if self.log_of(spec.name) is log]
            if mine:
                log.create_topics(mine)

    def consumer_lag(self, group_id: str, topics: Sequence[str]) -> list[PartitionLag]:
        """Each topic's lag from the log it lives in."""
        out: list[PartitionLag] = []
        for log in (self.shared, self.identifiable):
            mine = [topic for topic in topics if self.log_of(topic) is log]
            if mine:
                out += log.consumer_lag(group_id, mine)
        return sorted(out, key=lambda lag: (lag.topic, lag.partition))

    def producer(self) -> SeparatedProducer:
        return SeparatedProducer(self)

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        """A consumer on the one log that holds ``topics`` (a group reads one log)."""
        logs = {self.log_of(topic).url: self.log_of(topic) for topic in topics}
        if len(logs) > 1:
            raise BusError(
                "a consumer reads identifiable topics or other topics, not both: "
                f"{', '.join(sorted(topics))}"
            )
        log = next(iter(logs.values()), self.shared)
        return log.consumer(group_id, topics)

    def close(self) -> None:
        self.shared.close()
        self.identifiable.close()


class SeparatedProducer:
    """Publishes each record to its topic's log; ``flush`` makes both durable."""

    def __init__(self, bus: SeparatedBus) -> None:
        self._bus = bus
        self._producers: dict[str, EmbeddedProducer] = {}
        self._closed = False

    def _for(self, topic: str) -> EmbeddedProducer:
        log = self._bus.log_of(topic)
        producer = self._producers.get(log.url)
        if producer is None:
            producer = self._producers[log.url] = log.producer()
        return producer

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None = None,
    ) -> None:
        if self._closed:
            raise BusError("producer is closed")
        self._for(topic).publish(topic, value, key=key, headers=headers)

    def flush(self, timeout_s: float | None = None) -> None:
        for producer in self._producers.values():
            producer.flush(timeout_s)

    def close(self) -> None:
        self._closed = True
        errors: list[BusError] = []
        for producer in self._producers.values():
            try:
                producer.close()
            except BusError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
