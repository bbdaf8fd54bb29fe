"""The workers' probe server answers like the APIs' health routes."""

from __future__ import annotations

import httpx
import pytest

from services.runtime import probe


@pytest.fixture
def server():
    checks = {"database": lambda: None}
    s = probe.start_probe_server(0, checks=checks, max_silence_s=0.2)
    yield s
    s.close()


def test_a_worker_is_alive_and_ready_when_its_checks_pass(server: probe.ProbeServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200 and "python_info" in metrics.text
    assert httpx.get(f"{base}/nope").status_code == 404


def test_a_failing_check_makes_the_worker_unready(server: probe.ProbeServer) -> None:
    def broken() -> None:
        raise ConnectionError("kafka down")

    server.add_check("bus", broken)
    ready = httpx.get(f"http://127.0.0.1:{server.port}/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["bus"] == "unavailable: ConnectionError"


def test_a_worker_loop_that_stops_beating_fails_liveness(server: probe.ProbeServer) -> None:
    import time

    probe.beat()  # the module-level beat reaches the process's server
    url = f"http://127.0.0.1:{server.port}/healthz"
    assert httpx.get(url).status_code == 200
    time.sleep(0.3)
    stalled = httpx.get(url)
    assert stalled.status_code == 503 and stalled.json()["status"] == "stalled"
