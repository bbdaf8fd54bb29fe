"""The Kafka backend: the bus port on kafka-python 3.x, tuned for throughput and at-least-once.

Producers batch (``linger_ms``/``batch_size``), are idempotent with ``acks=all`` and never
wait per record: send failures are collected by errback and raised by ``flush``. Consumers
use the classic group protocol with auto-commit off; offsets move only through ``commit``.
Every client (producer, consumer, admin) gets the same ``KafkaSecurity`` (TLS, SASL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from kafka.structs import OffsetAndMetadata

from services.runtime.bus.api import BusError, Headers, Message, PartitionLag, TopicSpec
from services.runtime.bus.records import normalise_headers, normalise_key
from services.runtime.bus.security import KafkaSecurity
from services.runtime.bus.tracing import inject_trace_headers

__all__ = ["KafkaBus", "KafkaBusConsumer", "KafkaBusProducer"]

log = logging.getLogger(__name__)


class KafkaBusProducer:
    """Publishes through one ``KafkaProducer``; ``flush`` surfaces every failed send."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        # Bound once: the errback is attached to every send on the hot path.
        self._on_error = self._record_error

    def _record_error(self, exc: BaseException) -> None:
        # Runs on the sender thread.
        with self._errors_lock:
            self._errors.append(exc)

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | str | None = None,
        headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one record; delivery is confirmed (or reported failed) by ``flush``."""
        record_headers = inject_trace_headers(normalise_headers(headers))
        try:
            future = self._producer.send(
                topic, value=value, key=normalise_key(key), headers=record_headers
            )
        except (KafkaError, ValueError) as exc:
            raise BusError(f"publish to {topic!r} failed: {type(exc).__name__}: {exc}") from exc
        future.add_errback(self._on_error)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every queued record; raise ``BusError`` if any was not acknowledged."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise BusError(f"flush failed: {type(exc).__name__}: {exc}") from exc
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            first = errors[0]
            raise BusError(
                f"{len(errors)} record(s) were not acknowledged; first: "
                f"{type(first).__name__}: {first}"
            ) from first

    def close(self) -> None:
        """Flush (raising if records were lost), then release the connections."""
        try:
            self.flush()
        finally:
            self._producer.close()


class KafkaBusConsumer:
    """One member of a consumer group, reading with ``poll`` and committing explicitly."""

    def __init__(self, consumer: KafkaConsumer, topics: Sequence[str]) -> None:
        self._consumer = consumer
        self._consumer.subscribe(topics=list(topics))

    def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_records`` records, in offset order within each partition."""
        try:
            batches = self._consumer.poll(
                timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
            )
        except KafkaError as exc:
            raise BusError(f"poll failed: {type(exc).__name__}: {exc}") from exc
        out: list[Message] = []
        append = out.append
        for records in batches.values():
            for r in records:
                value = r.value
                append(
                    Message(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        value if value is not None else b"",
                        _headers(r.headers),
                        r.timestamp,
                    )
                )
        return out

    def commit(self, messages: Sequence[Message]) -> None:
        """Synchronously commit, per partition, the highest offset among ``messages`` + 1."""
        if not messages:
            return
        highest: dict[tuple[str, int], int] = {}
        for m in messages:
            tp_key = (m.topic, m.partition)
            if highest.get(tp_key, -1) < m.offset:
                highest[tp_key] = m.offset
        offsets = {
            TopicPartition(t, p): OffsetAndMetadata(o + 1, "", -1) for (t, p), o in highest.items()
        }
        try:
            self._consumer.commit(offsets=offsets)
        except KafkaError as exc:
            raise BusError(f"commit failed: {type(exc).__name__}: {exc}") from exc

    def seek_to_committed(self) -> None:
        """Rewind every assigned partition to its committed offset (or its beginning)."""
        try:
            for tp in self._consumer.assignment():
                committed = self._consumer.committed(tp)
                if committed is None:
                    self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
        except KafkaError as exc:
            raise BusError(f"seek failed: {type(exc).__name__}: {exc}") from exc

    def assignment(self) -> frozenset[tuple[str, int]]:
        """The partitions this member owns since the last rebalance."""
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def close(self) -> None:
        """Leave the group without committing anything (commits are explicit only)."""
        self._consumer.close(autocommit=False)


def _headers(raw: Any) -> Headers:
    if not raw:
        return ()
    headers = tuple(raw)
    for _, value in headers:
        if value is None:  # a null header value (rare): our port carries bytes
            return tuple((k, v if v is not None else b"") for k, v in headers)
    return headers


class KafkaBus:
    """The production backend: Apache Kafka through kafka-python (classic group protocol).

    ``security`` (default: PLAINTEXT) is handed to every client; ``producer_config`` and
    ``consumer_config`` are raw kafka-python options that override the tuning above.
    """

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "fjo",
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        compression_type: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        replication_factor: int = -1,
        security: KafkaSecurity | None = None,
        producer_config: Mapping[str, Any] | None = None,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = (
            bootstrap_servers.split(",")
            if isinstance(bootstrap_servers, str)
            else list(bootstrap_servers)
        )
        self._client_id = client_id
        self._security_config = dict((security or KafkaSecurity()).client_config())
        self._producer_config: dict[str, Any] = {
            **self._security_config,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "compression_type": compression_type,
            **(producer_config or {}),
        }
        self._consumer_config: dict[str, Any] = {
            **self._security_config,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            **(consumer_config or {}),
        }
        self._replication_factor = replication_factor
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def producer(self) -> KafkaBusProducer:
        """A new batching, idempotent producer."""
        try:
            producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-producer",
                **self._producer_config,
            )
        except KafkaError as exc:
            raise BusError(f"cannot connect producer: {type(exc).__name__}: {exc}") from exc
        return KafkaBusProducer(producer)

    def consumer(self, group_id: str, topics: Sequence[str]) -> KafkaBusConsumer:
        """A new member of ``group_id`` subscribed to ``topics``; it joins on first poll."""
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-{group_id}",
                group_id=group_id,
                **self._consumer_config,
            )
        except KafkaError as exc:
            raise BusError(f"cannot connect consumer: {type(exc).__name__}: {exc}") from exc
        return KafkaBusConsumer(consumer, topics)

    def _admin_client(self) -> KafkaAdminClient:
        with self._lock:
            if self._admin is None:
                try:
                    self._admin = KafkaAdminClient(
                        bootstrap_servers=self._bootstrap,
                        client_id=f"{self._client_id}-admin",
                        **self._security_config,
                    )
                except KafkaError as exc:  # unreachable, TLS or authentication failure
                    raise BusError(
                        f"cannot connect admin client: {type(exc).__name__}: {exc}"
                    ) from exc
            return self._admin

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create missing topics and wait until every partition has a leader."""
        if not specs:
            return
        admin = self._admin_client()
        request = {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": self._replication_factor,
                "configs": dict(spec.configs),
            }
            for spec in specs
        }
        try:
            response = admin.create_topics(request, raise_errors=False)
            failures = []
            for topic in response.get("topics", []):
                error = for_code(topic.get("error_code", 0))
                if error.errno == 0 or error is TopicAlreadyExistsError:
                    continue
                failures.append(f"{topic.get('name')}: {error.__name__}")
            if failures:
                raise BusError("create_topics failed: " + "; ".join(failures))
            admin.wait_for_topics([spec.name for spec in specs])
        except KafkaError as exc:
            raise BusError(f"create_topics failed: {type(exc).__name__}: {exc}") from exc

    def describe_topics(self, names: Sequence[str]) -> dict[str, TopicSpec]:
        """The broker's view of each of ``names`` that exists: its partition count and its
        topic configs (every one the broker reports, defaults included)."""
        admin = self._admin_client()
        try:
            present = sorted(set(names) & set(admin.list_topics()))
            if not present:
                return {}
            described = admin.describe_topics(present)
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
            )
        except KafkaError as exc:
            raise BusError(f"describe_topics failed: {type(exc).__name__}: {exc}") from exc
        by_topic = configs.get("topic", {})
        return {
            topic["name"]: TopicSpec(
                name=topic["name"],
                partitions=len(topic["partitions"]),
                configs={
                    key: str(entry["value"])
                    for key, entry in by_topic.get(topic["name"], {}).items()
                    if entry.get("value") is not None
                },
            )
            for topic in described
        }

    def consumer_lag(self, group_id: str, topics: Sequence[str]) -> list[PartitionLag]:
        """The group's committed offsets (OffsetFetch) against each partition's earliest and
        latest offsets (ListOffsets), all through the admin client: no consumer joins."""
        wanted = sorted(set(topics))
        if not wanted:
            return []
        admin = self._admin_client()
        try:
            partitions = sorted(
                TopicPartition(topic["name"], p["partition_index"])
                for topic in admin.describe_topics(wanted)
                if for_code(topic.get("error_code", 0)).errno == 0
                for p in topic.get("partitions", [])
            )
            if not partitions:
                return []
            starts = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.EARLIEST))
            ends = admin.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
            committed = self._group_offsets(admin, group_id, partitions)
        except KafkaError as exc:
            raise BusError(f"consumer_lag failed: {type(exc).__name__}: {exc}") from exc
        out = []
        for tp in partitions:
            mark = committed.get(tp)
            # The broker answers -1 for a partition the group has never committed.
            offset = mark.offset if mark is not None and mark.offset >= 0 else None
            out.append(
                PartitionLag(tp.topic, tp.partition, starts[tp].offset, ends[tp].offset, offset)
            )
        return out

    @staticmethod
    def _group_offsets(
        admin: KafkaAdminClient, group_id: str, partitions: list[TopicPartition], tries: int = 20
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        # A broker creates __consumer_offsets on first use, and until it has a leader every
        # group's coordinator is "not available" (retriable): wait a little, as a joining
        # consumer would, before calling the bus unavailable.
        attempt = 0
        while True:
            try:
                found = admin.list_group_offsets({group_id: partitions})
                return dict(found.get(group_id, {}))
            except KafkaError as exc:
                attempt += 1
                if not exc.retriable or attempt >= tries:
                    raise
                time.sleep(0.25)

    def close(self) -> None:
        """Close the admin connection (producers and consumers are closed by their owners)."""
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
