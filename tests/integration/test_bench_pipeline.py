"""``bench/pipeline.py`` with a tiny world: every pushed valid record reaches access, and the
JSON says so, on the embedded default and on Kafka + PostgreSQL with the raw ceiling.

Each service role runs as its own process, as in the real benchmark. Timings are never
asserted: only that they are there and that the counts reconcile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.topics import (
    INGEST_RECORDS,
    LINK_RESULTS,
    PSEUDONYMISE_LINKAGE_KEYS,
    PSEUDONYMISE_RECORDS,
    TOPICS,
)

pytestmark = pytest.mark.timeout(360)  # two xdist workers share the cores

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = ["--records", "60", "--spine-size", "150", "--drain-timeout", "60"]


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    """``python -m bench.pipeline`` as an operator runs it (its own process: it starts and
    stops the stack's processes); the JSON it wrote."""
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pipeline", *TINY, *args,
         "--work-dir", str(tmp_path / "work"), "--results-dir", str(results)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the benchmark stops the stack it started
        output, _ = proc.communicate(timeout=60)
        pytest.fail(f"the benchmark did not finish in 240 s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-5000:]
    written = sorted(p for p in results.glob("pipeline-*.json") if p.name != "pipeline-latest.json")
    assert len(written) == 1, sorted(results.iterdir())
    latest = json.loads((results / "pipeline-latest.json").read_text())
    assert json.loads(written[0].read_text()) == latest
    assert latest["benchmark"] == "pipeline" and latest["environment"]["cpu_count"]
    return latest


def _check_backend(result: dict[str, Any], pushed_valid: int, pushed_invalid: int) -> None:
    counts = result["records"]
    assert counts["pushed_valid"] == pushed_valid > 0
    assert counts["accepted"] == pushed_valid
    assert counts["rejected"] == counts["quarantined"] == pushed_invalid > 0
    assert counts["received_by_ingest"] == pushed_valid
    assert counts["stored_in_access"] == pushed_valid
    assert counts["complete"] == pushed_valid
    assert counts["missing_rows"] == counts["missing_link_decisions"] == 0
    assert counts["dead_letters"] == 0
    assert 0 < counts["person_records"] < pushed_valid
    assert sum(r["accepted"] for r in result["receipts"]) == pushed_valid
    assert result["records_per_s"] > 0
    for kind in ("complete", "stored"):
        lat = result["latency_ms"][kind]
        assert set(lat) >= {"p50", "p99"} and lat["p50"] <= lat["p99"]
    stages = result["stages"]
    assert stages["pseudonymise ← ingest.records.v1"]["records"] == pushed_valid
    assert stages["access ← pseudonymise.records.v1"]["records"] == pushed_valid
    assert stages["link ← pseudonymise.linkage-keys.v1"]["records"] == counts["person_records"]
    assert {"pseudonymise-worker", "link-worker", "access-worker", "ingest-api"} <= set(
        result["cpu_s"]
    )


def test_the_embedded_pipeline_delivers_every_valid_record_to_access(tmp_path: Path) -> None:
    latest = _bench(tmp_path, "--backends", "embedded", "--no-ceiling")
    p = latest["parameters"]
    _check_backend(latest["results"]["embedded"], p["incoming_valid"], p["incoming_invalid"])
    assert latest["ceiling"] is None and latest["skipped"] == {"ceiling": "not asked for"}


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_kafka_pipeline_and_its_raw_ceiling_reconcile(
    tmp_path: Path, kafka_bootstrap: str, postgres_url: str
) -> None:
    latest = _bench(
        tmp_path,
        "--backends", "kafka",
        "--kafka-bootstrap", kafka_bootstrap,
        "--postgres-url", postgres_url,
    )  # fmt: skip
    p = latest["parameters"]
    kafka = latest["results"]["kafka"]
    _check_backend(kafka, p["incoming_valid"], p["incoming_invalid"])
    ceiling = latest["ceiling"]
    assert ceiling["records"] == p["incoming_valid"]
    assert ceiling["person_records"] == kafka["records"]["person_records"]
    assert ceiling["records_per_s"] > 0 and set(ceiling["latency_ms"]["complete"]) >= {"p50", "p99"}
    assert ceiling["records_per_s"] == max(ceiling["runs_records_per_s"])  # the best of its runs
    assert len(ceiling["runs_records_per_s"]) == 3
    partitions = {t.name: t.partitions for t in TOPICS}
    assert ceiling["partitions"] == {
        "in": partitions[INGEST_RECORDS.name],
        "records": partitions[PSEUDONYMISE_RECORDS.name],
        "keys": partitions[PSEUDONYMISE_LINKAGE_KEYS.name],
        "results": partitions[LINK_RESULTS.name],
    }
    assert latest["ratio_to_ceiling"]["kafka"] == pytest.approx(
        kafka["records_per_s"] / ceiling["records_per_s"], rel=1e-3
    )
