"""Thin entrypoint of the pseudonymise service: a worker only (no HTTP API)."""

from __future__ import annotations

import threading

from services.pseudonymise.bootstrap import build_worker
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.db import make_engine
from services.runtime.telemetry import configure_logging, setup_telemetry
from services.runtime.worker_process import bus_from_settings, run_until_signalled

__all__ = ["run_worker"]


def run_worker(
    settings: PseudonymiseSettings | None = None, stop: threading.Event | None = None
) -> None:
    """Split every received record into content and linkage keys until stopped."""
    settings = settings or PseudonymiseSettings()
    configure_logging(settings.telemetry.log_level, json_lines=settings.telemetry.log_json)
    setup_telemetry(settings.service_name, otlp_endpoint=settings.telemetry.otlp_endpoint)
    bus = bus_from_settings(settings.bus)
    engine = make_engine(settings.database_url)

    def close() -> None:
        bus.close()
        engine.dispose()

    worker = build_worker(settings, bus, engine)
    run_until_signalled(worker, name="pseudonymise", stop=stop, on_exit=close)
