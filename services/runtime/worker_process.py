"""What every worker process does around its ``Worker``: bus from settings, signals, shutdown.

A worker stops on SIGTERM (Kubernetes) or SIGINT (a terminal) after the batch in hand, so
its last offsets are committed; a SIGKILL loses nothing either (exactly-once effect), only
time.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from services.runtime.bus.factory import bus_from_settings
from services.runtime.delivery import Worker

__all__ = ["bus_from_settings", "run_until_signalled"]


def run_until_signalled(
    worker: Worker,
    *,
    name: str,
    stop: threading.Event | None = None,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Run ``worker`` until SIGTERM/SIGINT (or ``stop``), then close it and call ``on_exit``."""
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
        if on_exit is not None:
            on_exit()
