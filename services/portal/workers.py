"""The workers' own account of themselves, for the operator's status page.

Workers have no API; each answers ``GET /status`` on its probe port
(``services.runtime.worker_status``): its group's lag per partition, its dead letters and the
records it suppressed on purpose; counts, error types and reasons only. The portal reads the
URLs of ``status_workers`` without a token (the probe port is reachable from the portal
alone, ``deploy/manifests/network.py``) and shows the figures only to people with one of
``status_roles``, the roles ingest's quarantine summary asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ValidationError

__all__ = ["TopicLag", "WorkerProbes", "WorkerReport"]


class _Partition(BaseModel):
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


class _Lag(BaseModel):
    total: int
    partitions: list[_Partition]


class _DeadLetters(BaseModel):
    dead_letter_topic: str
    total: int
    by_topic: dict[str, int]
    by_reason: dict[str, int]


class _Suppressed(BaseModel):
    total: int
    by_reason: dict[str, int]


class _Status(BaseModel):
    group: str
    lag: _Lag
    dead_letters: _DeadLetters
    # A worker of a release before suppression counting says nothing: shown as not reported,
    # never as a zero it did not give.
    suppressed: _Suppressed | None = None


@dataclass(frozen=True)
class TopicLag:
    """One consumed topic of a worker: its partitions' lag, and those behind."""

    topic: str
    partitions: int
    lag: int
    behind: tuple[int, ...]


@dataclass(frozen=True)
class WorkerReport:
    """What one worker said, or why it said nothing."""

    name: str
    problem: str | None = None
    group: str = ""
    lag: int = 0
    topics: tuple[TopicLag, ...] = ()
    dead_letter_topic: str = ""
    dead_letters: int = 0
    dead_by_topic: Mapping[str, int] = field(default_factory=dict)
    dead_by_reason: Mapping[str, int] = field(default_factory=dict)
    suppressed: int | None = None
    """Records settled on purpose without effect (e.g. re-sent after their erasure); None
    when the worker does not report it."""
    suppressed_by_reason: Mapping[str, int] = field(default_factory=dict)


class WorkerProbes:
    """Reads every configured worker's ``/status`` at once (a slow one delays the page by
    ``timeout_s`` at most)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = dict(urls)
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def read(self) -> list[WorkerReport]:
        if not self.urls:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(self.urls))) as pool:
            return list(pool.map(self._read_one, sorted(self.urls)))

    def _read_one(self, name: str) -> WorkerReport:
        try:
            response = self._client.get(self.urls[name].rstrip("/") + "/status")
        except httpx.HTTPError as exc:  # a worker that is down is what this page is for
            return WorkerReport(name, problem=f"unreachable ({type(exc).__name__})")
        if response.status_code != 200:
            return WorkerReport(name, problem=f"answered {response.status_code}")
        try:
            status = _Status.model_validate_json(response.content)
        except ValidationError:
            return WorkerReport(name, problem="answered something other than a worker status")
        by_topic: dict[str, list[_Partition]] = {}
        for p in status.lag.partitions:
            by_topic.setdefault(p.topic, []).append(p)
        return WorkerReport(
            name,
            group=status.group,
            lag=status.lag.total,
            topics=tuple(
                TopicLag(
                    topic,
                    len(parts),
                    sum(p.lag for p in parts),
                    tuple(p.partition for p in parts if p.lag),
                )
                for topic, parts in sorted(by_topic.items())
            ),
            dead_letter_topic=status.dead_letters.dead_letter_topic,
            dead_letters=status.dead_letters.total,
            dead_by_topic=status.dead_letters.by_topic,
            dead_by_reason=status.dead_letters.by_reason,
            suppressed=None if status.suppressed is None else status.suppressed.total,
            suppressed_by_reason={} if status.suppressed is None else status.suppressed.by_reason,
        )

    def close(self) -> None:
        self._client.close()
