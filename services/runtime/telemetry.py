"""OpenTelemetry tracing and JSON logs that carry trace ids (and never an identifier).

``setup_telemetry`` is called once by an entrypoint (api or worker), never at import time.
Trace context crosses Kafka in record headers, injected and extracted by the bus itself
(``services.runtime.bus.tracing``), because kafka-python's auto-instrumentation misses
``poll()`` loops.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

if TYPE_CHECKING:
    from services.runtime.settings import ServiceSettings

__all__ = ["JsonLogFormatter", "configure_logging", "configure_process", "setup_telemetry"]

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line with the active trace and span ids.

    Callers log event names, counts and tokens; identifiers must never be passed, and
    exception text is included only as the exception type plus message our code wrote.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            payload["trace_id"] = format(ctx.trace_id, "032x")
            payload["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            payload["error_type"] = record.exc_info[0].__name__
        return json.dumps(payload, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route the root logger to stderr, as JSON lines by default."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def setup_telemetry(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """Install a tracer provider for this process; export over OTLP/HTTP when configured.

    OpenTelemetry allows one global provider per process: when one is installed already (an
    embedding process, a test harness), the exporters are added to it instead.
    """
    current = trace.get_tracer_provider()
    installed = isinstance(current, TracerProvider)
    provider = (
        current
        if isinstance(current, TracerProvider)
        else TracerProvider(resource=Resource.create({"service.name": service_name}))
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    if not installed:
        trace.set_tracer_provider(provider)
    return provider


def configure_process(settings: ServiceSettings) -> TracerProvider:
    """JSON logs and tracing for one service process (an API or a worker), from its settings."""
    configure_logging(settings.telemetry.log_level, json_lines=settings.telemetry.log_json)
    return setup_telemetry(settings.service_name, otlp_endpoint=settings.telemetry.otlp_endpoint)
