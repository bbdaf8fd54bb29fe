"""What every worker process does around its ``Worker``: logs and tracing, the bus, signals,
shutdown. ``run_worker`` is the one way a service's worker runs (``fjo serve <service>
worker``); a service only says how to build its ``Worker`` (``services/catalogue.py``).

A worker stops on SIGTERM (Kubernetes) or SIGINT (a terminal) after the batch in hand, so
its last offsets are committed; a SIGKILL loses nothing either (exactly-once effect), only
time.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from contracts.services import Service
from contracts.topics import dead_letter_topic, topics_consumed_by
from services.runtime.bus.api import Bus
from services.runtime.bus.factory import bus_from_settings
from services.runtime.delivery import Worker, WorkerConfig
from services.runtime.probe import serve_status
from services.runtime.settings import BusSettings, ServiceSettings
from services.runtime.telemetry import configure_process
from services.runtime.worker_status import worker_status

__all__ = [
    "WorkerBuilder",
    "bus_from_settings",
    "run_until_signalled",
    "run_worker",
    "worker_config",
]

WorkerBuilder = Callable[[Any, Bus, ExitStack], Worker]
"""Builds a service's worker from its settings and the bus; whatever else it opens (an
engine, a context) it hands to the ``ExitStack``, which closes it after the worker."""


def worker_config(
    service: Service,
    *,
    group_id: str,
    bus: BusSettings,
    topics: Sequence[str] | None = None,
) -> WorkerConfig:
    """A service's worker as the topic registry has it: the topics it consumes (unless
    ``topics`` says otherwise) and its dead-letter topic; attempts and batch size from the
    bus settings."""
    return WorkerConfig(
        group_id=group_id,
        topics=tuple(topics or (t.name for t in topics_consumed_by(service))),
        dead_letter_topic=dead_letter_topic(service),
        max_attempts=bus.max_attempts,
        max_batch=bus.max_batch,
    )


def run_worker(
    settings: ServiceSettings, build: WorkerBuilder, *, stop: threading.Event | None = None
) -> None:
    """Run a service's worker until SIGTERM/SIGINT (or ``stop``): JSON logs and tracing, the
    bus from the settings, the worker from ``build``; then close all of it."""
    configure_process(settings)
    with ExitStack() as resources:
        bus = bus_from_settings(settings.bus)
        resources.callback(bus.close)
        worker = build(settings, bus, resources)
        serve_status(lambda: worker_status(worker))
        run_until_signalled(worker, name=settings.service_name, stop=stop)


def run_until_signalled(
    worker: Worker,
    *,
    name: str,
    stop: threading.Event | None = None,
) -> None:
    """Run ``worker`` until SIGTERM/SIGINT (or ``stop``), then close it."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log = logging.getLogger(f"fjo.{name}")
    log.info("worker started", extra={"group": worker.group_id, "topics": worker.topics})
    try:
        worker.run(stop)
    finally:
        log.info("worker stopped", extra={"stats": worker.stats.as_dict()})
