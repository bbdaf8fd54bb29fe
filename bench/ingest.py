"""Ingest throughput: records/s through ``POST /v1/deliveries`` over real HTTP onto a real bus.

The server is ``fjo serve ingest api`` in its own process (uvicorn), configured only through
its environment (``FJO_INGEST_*``), exactly as deployed; the client streams synthetic child
records (contract-valid, with a share of invalid rows) from a generator, so neither side
holds the body. Each run is timed from the first byte sent to the final receipt, which
ingest returns only once the bus acknowledged every record, so the rate includes
validation, de-duplication, publishing and the receipt.

Backends: the embedded bus on SQLite (ingest on SQLite), and Kafka when a bootstrap is
given (ingest on PostgreSQL when a URL is given, else SQLite).

    python -m bench.ingest --records 50000
    python -m bench.ingest --records 50000 --kafka-bootstrap "$(cat var/kafka/bootstrap)" \\
        --postgres-url "$(cat var/postgres/url)"

Writes ``bench/results/ingest-<ts>.json`` and ``ingest-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench._common import environment, write_result

__all__ = ["run_ingest_benchmark"]

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://dev.fjo.invalid"
AUDIENCE = "fjo-ingest"

_FORENAMES = ("Cerys", "Dylan", "Megan", "Rhys", "Ffion", "Osian", "Seren", "Tomos", "Baby")
_SURNAMES = ("Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Hughes", "Lewis")
_POSTCODES = ("CF10 1AA", "CF24 3DG", "SA1 1NW", "LL57 2DG", "NP20 4AR", "SY23 3BX")


def synthetic_lines(records: int, *, bad_every: int, seed: str) -> Iterator[bytes]:
    """NDJSON child records; every ``bad_every``-th has a date of birth in the future."""
    rng = random.Random(seed)
    for i in range(records):
        record = {
            "source": "cafcass-cymru",
            "record_id": f"CH-{seed}-{i:09d}",
            "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "case_id": f"CASE-{seed}-{i // 3:08d}",
            "forename": rng.choice(_FORENAMES),
            "surname": rng.choice(_SURNAMES),
            "date_of_birth": f"{rng.randint(2005, 2022)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}",
            "sex": rng.choice([1, 2, 9]),
            "nhs_number": f"{rng.randint(100, 999)} {rng.randint(100, 999)} "
            f"{rng.randint(1000, 9999)}",
            "address": {
                "line_1": f"{rng.randint(1, 200)} Heol y Frenhines",
                "postcode": rng.choice(_POSTCODES),
            },
            "ethnicity": "white-british",
            "living_situation": "with-mother",
        }
        if bad_every and (i + 1) % bad_every == 0:
            record["date_of_birth"] = "2999-01-01"
        yield json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _chunks(lines: Iterator[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    pending = bytearray()
    for line in lines:
        pending += line
        if len(pending) >= size:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """``fjo serve ingest api`` in a subprocess, configured by environment variables."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = _free_port()
        self.log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fjo.cli import main; main()",
                "serve",
                "ingest",
                "api",
                "--port",
                str(self.port),
            ],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ingest server did not become ready; see {self.log.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _run_backend(
    label: str,
    env: dict[str, str],
    workdir: Path,
    *,
    records: int,
    deliveries: int,
    bad_every: int,
) -> dict[str, Any]:
    from services.runtime.auth import DevIssuer

    key_file = workdir / "dev-issuer.pem"
    issuer = DevIssuer.from_file(key_file, issuer=ISSUER)
    token = issuer.mint(
        "bench", audience=AUDIENCE, roles=["partner"], source="cafcass-cymru", ttl_s=6 * 3600
    )
    server = _Server(
        {
            **env,
            "FJO_ENVIRONMENT": "dev",
            "FJO_INGEST_AUTH__DEV_KEY_FILE": str(key_file),
            "FJO_INGEST_AUTH__ISSUER": ISSUER,
            "FJO_INGEST_SPOOL_DIR": str(workdir / "spool"),
            "FJO_INGEST_LIMITS__RATE_PER_S": "1000",
            "FJO_INGEST_TELEMETRY__LOG_LEVEL": "WARNING",
        },
        workdir,
    )
    try:
        per = records // deliveries
        seed = uuid.uuid4().hex[:8]
        sent_bytes = 0
        totals = {"received": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
        times: list[float] = []
        with httpx.Client(base_url=server.url, timeout=httpx.Timeout(60, read=3600)) as client:
            started = time.perf_counter()
            for d in range(deliveries):
                counted = [0]

                def body(d: int = d, counted: list[int] = counted) -> Iterator[bytes]:
                    for chunk in _chunks(
                        synthetic_lines(per, bad_every=bad_every, seed=f"{seed}{d}")
                    ):
                        counted[0] += len(chunk)
                        yield chunk

                t0 = time.perf_counter()
                response = client.post(
                    "/v1/deliveries",
                    params={"record_type": "child"},
                    content=body(),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/x-ndjson",
                    },
                )
                times.append(time.perf_counter() - t0)
                if response.status_code != 201:
                    raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text}")
                receipt = response.json()
                if receipt["status"] != "complete":
                    raise RuntimeError(f"{label}: receipt not complete: {receipt}")
                for key in totals:
                    totals[key] += receipt[key]
                sent_bytes += counted[0]
            elapsed = time.perf_counter() - started
    finally:
        server.stop()
    assert totals["received"] == totals["accepted"] + totals["rejected"] + totals["duplicates"]
    return {
        "backend": label,
        "records": totals["received"],
        "deliveries": deliveries,
        "bytes": sent_bytes,
        "seconds": round(elapsed, 3),
        "records_per_s": round(totals["received"] / elapsed, 1),
        "mb_per_s": round(sent_bytes / elapsed / 1e6, 2),
        "seconds_per_delivery": [round(t, 3) for t in times],
        **totals,
    }


def run_ingest_benchmark(
    *,
    records: int = 50_000,
    deliveries: int = 1,
    bad_every: int = 50,
    kafka_bootstrap: str | None = None,
    postgres_url: str | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the embedded (and, with a bootstrap, the Kafka) configuration; write the JSON."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fjo-bench-ingest-") as tmp:
        work = Path(tmp)
        embedded = work / "embedded"
        embedded.mkdir()
        runs.append(
            _run_backend(
                "embedded-sqlite",
                {
                    "FJO_INGEST_DATABASE_URL": f"sqlite:///{embedded / 'ingest.db'}",
                    "FJO_INGEST_BUS__BACKEND": "embedded",
                    "FJO_INGEST_BUS__EMBEDDED_URL": f"sqlite:///{embedded / 'bus.db'}",
                    # Where ingest's topics go: they are identifiable (records in clear).
                    "FJO_INGEST_BUS__EMBEDDED_IDENTIFIABLE_URL": (
                        f"sqlite:///{embedded / 'identifiable-bus.db'}"
                    ),
                },
                embedded,
                records=records,
                deliveries=deliveries,
                bad_every=bad_every,
            )
        )
        if kafka_bootstrap:
            kafka_dir = work / "kafka"
            kafka_dir.mkdir()
            database = postgres_url and _fresh_postgres(postgres_url)
            try:
                runs.append(
                    _run_backend(
                        "kafka-postgres" if database else "kafka-sqlite",
                        {
                            "FJO_INGEST_DATABASE_URL": database
                            or f"sqlite:///{kafka_dir / 'ingest.db'}",
                            "FJO_INGEST_BUS__BACKEND": "kafka",
                            "FJO_INGEST_BUS__KAFKA_BOOTSTRAP": kafka_bootstrap,
                        },
                        kafka_dir,
                        records=records,
                        deliveries=deliveries,
                        bad_every=bad_every,
                    )
                )
            finally:
                if database and postgres_url:
                    _drop_postgres(postgres_url, database)
    result = {
        "benchmark": "ingest",
        "description": "records/s through POST /v1/deliveries (NDJSON streamed over HTTP to "
        "`fjo serve ingest api`), until the receipt that follows the bus acknowledgement",
        "parameters": {
            "records": records,
            "deliveries": deliveries,
            "bad_every": bad_every,
            "publish_batch_size": 1000,
        },
        "environment": environment(),
        "runs": runs,
        "summary": {
            run["backend"]: f"{run['records_per_s']:.0f} records/s ({run['mb_per_s']} MB/s)"
            for run in runs
        },
    }
    result["path"] = str(write_result("ingest", result, out_dir))
    return result


def _fresh_postgres(server_url: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"fjo_bench_ingest_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(server_url: str, database_url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = make_url(database_url).database
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bench.ingest --help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument(
        "--deliveries", type=int, default=1, help="split the records over this many deliveries"
    )
    parser.add_argument(
        "--bad-every", type=int, default=50, help="every N-th record is invalid (0: none)"
    )
    parser.add_argument("--kafka-bootstrap", default=os.environ.get("FJO_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--postgres-url", default=os.environ.get("FJO_TEST_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run_ingest_benchmark(
        records=args.records,
        deliveries=args.deliveries,
        bad_every=args.bad_every,
        kafka_bootstrap=args.kafka_bootstrap,
        postgres_url=args.postgres_url,
        out_dir=args.out,
    )
    print(json.dumps(result["summary"], indent=1))
    print(result["path"])


if __name__ == "__main__":
    main()
