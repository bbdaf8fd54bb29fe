"""A tiny HTTP server for workers: ``/healthz``, ``/readyz``, ``/metrics`` and ``/status`` on
their own port.

Workers have no FastAPI app, yet Kubernetes needs liveness and readiness probes and
Prometheus needs their metrics. ``fjo serve <service> worker --probe-port N`` starts this
server in a daemon thread beside the consumer loop (stdlib ``http.server``: no event loop to
share with kafka-python). Liveness fails when the loop stops calling ``beat()`` for longer
than ``max_silence_s`` (a wedged consumer), once it has called it at least once; readiness
runs the same named checks as the APIs' ``/readyz``. ``/status`` is the worker's lag and dead
letters for the operator's page (``services.runtime.worker_status``), once ``run_worker`` has a
worker to describe: 404 before, 503 while the bus or database cannot answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from services.runtime.health import ReadinessCheck

__all__ = ["ProbeServer", "StatusProvider", "beat", "serve_status", "start_probe_server"]

StatusProvider = Callable[[], Mapping[str, object]]
"""Makes the JSON body of ``/status`` (it may raise: the answer is then 503)."""

_active: list[ProbeServer] = []  # the process's probe server, if `fjo serve` started one


class ProbeServer:
    """The running probe server; ``beat()`` from the worker loop, ``close()`` at shutdown."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        checks: Mapping[str, ReadinessCheck] | None = None,
        registry: CollectorRegistry | None = None,
        max_silence_s: float = 120.0,
    ) -> None:
        self._checks = dict(checks or {})
        self._registry = registry or REGISTRY
        self._max_silence_s = max_silence_s
        self._last_beat: float | None = None
        self._status: StatusProvider | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fjo-probe", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def beat(self) -> None:
        """Record that the worker loop made progress (called once per poll)."""
        with self._lock:
            self._last_beat = time.monotonic()

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        """Add a readiness check once the worker's dependencies exist."""
        self._checks[name] = check

    def set_status(self, provider: StatusProvider) -> None:
        """Answer ``/status`` with ``provider()``."""
        self._status = provider

    def close(self) -> None:
        if self in _active:
            _active.remove(self)
        self._httpd.shutdown()
        self._httpd.server_close()

    def _alive(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            last = self._last_beat
        if last is None:
            return True, {"status": "ok"}
        silence = time.monotonic() - last
        ok = silence <= self._max_silence_s
        return ok, {"status": "ok" if ok else "stalled", "since_last_beat_s": round(silence, 1)}

    def _ready(self) -> tuple[bool, dict[str, object]]:
        results: dict[str, str] = {}
        ready = True
        for name, check in list(self._checks.items()):
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; the type says which
                results[name] = f"unavailable: {type(exc).__name__}"
                ready = False
        return ready, {"status": "ok" if ready else "unavailable", "checks": results}

    def _status_body(self) -> tuple[HTTPStatus, dict[str, object]]:
        provider = self._status
        if provider is None:
            return HTTPStatus.NOT_FOUND, {"status": "no worker yet"}
        try:
            return HTTPStatus.OK, dict(provider())
        except Exception as exc:  # the bus or the database cannot answer now; the type says
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": f"unavailable: {type(exc).__name__}"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._json(*server._alive())
                elif path == "/readyz":
                    self._json(*server._ready())
                elif path == "/status":
                    code, body = server._status_body()
                    self._json(code == HTTPStatus.OK, body, code)
                elif path == "/metrics":
                    self._send(
                        HTTPStatus.OK, generate_latest(server._registry), CONTENT_TYPE_LATEST
                    )
                else:
                    self._json(False, {"status": "not found"}, HTTPStatus.NOT_FOUND)

            def _json(
                self, ok: bool, body: dict[str, object], status: HTTPStatus | None = None
            ) -> None:
                code = status or (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE)
                self._send(code, json.dumps(body).encode(), "application/json")

            def _send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the worker's own logs

        return Handler


def start_probe_server(
    port: int,
    *,
    host: str = "127.0.0.1",
    checks: Mapping[str, ReadinessCheck] | None = None,
    registry: CollectorRegistry | None = None,
    max_silence_s: float = 120.0,
) -> ProbeServer:
    """Start a probe server in a daemon thread and return it (``beat()`` then reaches it)."""
    server = ProbeServer(
        host, port, checks=checks, registry=registry, max_silence_s=max_silence_s
    ).start()
    _active[:] = [server]
    return server


def serve_status(provider: StatusProvider) -> None:
    """Let this process's probe server (if any) answer ``/status`` with ``provider()``."""
    for server in _active:
        server.set_status(provider)


def beat() -> None:
    """Tell this process's probe server (if any) that the worker loop made progress."""
    for server in _active:
        server.beat()
