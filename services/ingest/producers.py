"""A pool of bus producers, one per delivery in flight, so a failed flush is the right delivery's.

A producer's ``flush`` reports every unacknowledged record it holds; shared between two
concurrent deliveries, one delivery could see the other's failure and the other would
wrongly call its records delivered. Lending each running delivery its own producer keeps
acknowledgements attributable, and the pool size bounds how many deliveries run at once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator

from services.runtime.bus.api import Producer

__all__ = ["PoolExhausted", "ProducerPool"]

log = logging.getLogger("fjo.ingest")


class PoolExhausted(Exception):
    """Every producer is lent out: the service is at its concurrent-delivery limit."""


class ProducerPool:
    """Lends producers made by ``factory``; a producer whose delivery failed is replaced."""

    def __init__(self, factory: Callable[[], Producer], size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._factory = factory
        self._size = size
        self._idle: queue.LifoQueue[Producer] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[Producer] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def lend(
        self, timeout_s: float = 0.0, *, keep_on: tuple[type[BaseException], ...] = ()
    ) -> Iterator[Producer]:
        """A producer for one delivery; ``PoolExhausted`` if none frees up within the timeout.

        When the block raises, the producer is discarded, unless the exception is one of
        ``keep_on`` (raised before anything was published).
        """
        if self._closed:
            raise PoolExhausted("pool is closed")
        if timeout_s > 0:
            acquired = self._slots.acquire(timeout=timeout_s)
        else:
            acquired = self._slots.acquire(blocking=False)
        if not acquired:
            raise PoolExhausted(f"{self._size} deliveries already in flight")
        producer: Producer | None = None
        try:
            try:
                producer = self._idle.get_nowait()
            except queue.Empty:
                producer = self._factory()
                with self._lock:
                    self._all.append(producer)
            yield producer
        except keep_on:
            raise
        except BaseException:
            # Its buffer may hold records of the failed batch: drop them with the producer,
            # so they cannot reach the bus behind the delivery's back.
            if producer is not None:
                self._discard(producer)
                producer = None
            raise
        finally:
            if producer is not None:
                if self._closed:
                    self._discard(producer)
                else:
                    self._idle.put(producer)
            self._slots.release()

    def _discard(self, producer: Producer) -> None:
        with self._lock:
            if producer in self._all:
                self._all.remove(producer)
        try:
            producer.close()
        except Exception as exc:  # closing a failed producer may fail again; it is gone anyway
            log.info("discarded producer", extra={"error_type": type(exc).__name__})

    def close(self) -> None:
        """Flush and close every producer (idle ones; lent ones are closed as they return)."""
        self._closed = True
        with self._lock:
            producers, self._all = list(self._all), []
        for producer in producers:
            try:
                producer.close()
            except Exception as exc:
                log.warning("producer close failed", extra={"error_type": type(exc).__name__})
