"""Trace context in record headers: the bus injects it on publish and extracts it on delivery.

The OpenTelemetry kafka-python instrumentation does not see a ``poll()`` loop, and the
embedded backend has no instrumentation at all, so both backends carry ``traceparent`` and
``tracestate`` themselves, as W3C trace-context headers with UTF-8 values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from services.runtime.bus.api import Message

__all__ = [
    "TRACE_HEADERS",
    "HeaderGetter",
    "HeaderSetter",
    "consumer_span",
    "extract_context",
    "inject_trace_headers",
]

TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

_TRACER_NAME = "fjo.runtime.bus"


class HeaderSetter(Setter[list[tuple[str, bytes]]]):
    """Writes propagation fields into a mutable header list, replacing any earlier value."""

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("utf-8")))


class HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    """Reads propagation fields from record headers (the newest value of a repeated name)."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        for k, v in reversed(carrier):
            if k == key:
                return [v.decode("utf-8", errors="replace")]
        return None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_SETTER = HeaderSetter()
_GETTER = HeaderGetter()

# Producers publish many records under one context (a request, a handler run); injecting
# once per context instead of once per record keeps publish cheap on the hot path. One tuple,
# swapped in a single store, so threads publishing under different contexts never mix halves.
_cache: tuple[otel_context.Context | None, tuple[tuple[str, bytes], ...]] = (None, ())


def _headers_for_current_context() -> tuple[tuple[str, bytes], ...]:
    global _cache
    ctx = otel_context.get_current()
    cached_ctx, cached_headers = _cache
    if ctx is cached_ctx:
        return cached_headers
    carrier: list[tuple[str, bytes]] = []
    propagate.inject(carrier, context=ctx, setter=_SETTER)
    headers = tuple(carrier)
    _cache = (ctx, headers)
    return headers


def inject_trace_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Add the current trace context to ``headers`` unless the caller already set one."""
    extra = _headers_for_current_context()
    if not extra:
        return headers
    for name, _ in headers:
        if name == "traceparent":
            return headers
    headers.extend(extra)
    return headers


def extract_context(message: Message) -> otel_context.Context:
    """The trace context the producer of ``message`` published it under (empty if none)."""
    return propagate.extract(message.headers, context=otel_context.Context(), getter=_GETTER)


@contextmanager
def consumer_span(
    message: Message,
    *,
    group_id: str,
    system: str,
    operation: str = "process",
    tracer_provider: TracerProvider | None = None,
    attributes: dict[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A CONSUMER span, child of the producer's context, around handling ``message``.

    Exceptions are recorded by type only: their text may quote record content, and traces
    must never carry an identifier.
    """
    tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
    attrs: dict[str, Any] = {
        "messaging.system": system,
        "messaging.operation.type": operation,
        "messaging.destination.name": message.topic,
        "messaging.destination.partition.id": str(message.partition),
        "messaging.kafka.offset": message.offset,
        "messaging.consumer.group.name": group_id,
    }
    if attributes:
        attrs.update(attributes)
    with tracer.start_as_current_span(
        f"{operation} {message.topic}",
        context=extract_context(message),
        kind=SpanKind.CONSUMER,
        attributes=attrs,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__qualname__)
            raise
