"""`fjo up` runs the platform as processes on real Kafka and PostgreSQL; `fjo down` stops them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer
from sqlalchemy.engine import make_url

from services.runtime.auth import DevIssuer
from tests._services import drop_database
from tests.deploy.conftest import REPO_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(400)]

FJO = [str(Path(sys.executable).parent / "fjo")]


def _fjo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
    return subprocess.run(
        [*FJO, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else ""
    return "State:\tZ" not in status and status != ""


def _child_record() -> dict:
    from tests.unit.ingest.support import child

    return child(7, source="cafcass-cymru")


def test_fjo_up_runs_every_role_as_its_own_process_and_a_record_flows_through_ingest(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "stack"
    prefix = f"fjo_smoke_{uuid.uuid4().hex[:8]}"
    up = _fjo(
        "up",
        "--state-dir", str(state),
        "--kafka-bootstrap", kafka_bootstrap,
        "--postgres-url", postgres_url,
        "--db-prefix", prefix,
        "--ready-timeout", "180",
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        ports = json.loads((state / "ports.json").read_text())
        recorded = json.loads((state / "stack.json").read_text())
        pids = {p["name"]: p["pid"] for p in recorded["processes"]}
        assert set(ports) == set(pids)
        apis = {name for name in ports if name.endswith("-api")}
        assert apis == {"ingest-api", "link-api", "access-api"}  # pseudonymise is a worker only
        assert {"pseudonymise-worker", "access-worker"} <= set(ports)
        assert len(set(pids.values())) == len(pids), "one process per role"
        for name, port in ports.items():
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200, (name, ready.text)
            assert (state / "pids" / f"{name}.pid").read_text().strip() == str(pids[name])

        # One record through ingest's real route, onto the real topic.
        issuer = DevIssuer.from_file(
            state / "dev-issuer.pem", issuer="https://dev.fjo.invalid", create=False
        )
        token = issuer.mint(
            "smoke", audience="fjo-ingest", roles=["partner"], source="cafcass-cymru"
        )
        record = _child_record()
        response = httpx.post(
            f"http://127.0.0.1:{ports['ingest-api']}/v1/deliveries",
            params={"record_type": "child"},
            content=(json.dumps(record) + "\n").encode(),
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert (receipt["received"], receipt["accepted"], receipt["rejected"]) == (1, 1, 0)

        consumer = KafkaConsumer(
            "ingest.records.v1",
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=15000,
        )
        try:
            found = next((m for m in consumer if record["record_id"].encode() in m.value), None)
        finally:
            consumer.close()
        assert found is not None, "the accepted record is on ingest.records.v1"
    finally:
        down = _fjo("down", "--state-dir", str(state), timeout=120)
        for db in ("ingest", "pseudonymise", "link", "access"):
            url = make_url(postgres_url).set(database=f"{prefix}_{db}")
            drop_database(postgres_url, url.render_as_string(hide_password=False))
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(_alive(pid) for pid in pids.values()), "fjo down stopped every process"
    assert not (state / "ports.json").exists() and not list((state / "pids").iterdir())
