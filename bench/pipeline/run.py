"""The pipeline benchmark end to end: the workload on each backend, the ceiling, the JSON."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kafka

from bench._common import environment, local_service, write_result
from bench.bus import MAX_RECORDS, PRODUCER_SETTINGS, default_bootstrap
from bench.pipeline.ceiling import CEILING_RUNS, run_ceiling
from bench.pipeline.measure import run_on
from bench.pipeline.workload import build_workload
from fjo.stack.api import Stack
from fjo.stack.embedded import EmbeddedStack
from fjo.stack.kafka import KafkaStack

__all__ = ["run_pipeline_benchmark"]

ROOT = Path(__file__).resolve().parents[2]


def run_pipeline_benchmark(
    *,
    records: int = 3000,
    spine_size: int = 3000,
    seed: int = 20251124,
    backends: tuple[str, ...] = ("embedded", "kafka"),
    kafka_bootstrap: str | None = None,
    postgres_url: str | None = None,
    ceiling: bool = True,
    part_bytes: int = 1024 * 1024,
    drain_timeout_s: float = 900.0,
    work_dir: Path | None = None,
    write: bool = True,
    results_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the pipeline benchmark; return its figures (also written to bench/results/).

    ``kafka_bootstrap`` defaults to FJO_KAFKA_BOOTSTRAP, FJO_TEST_KAFKA_BOOTSTRAP or
    var/kafka/bootstrap; ``"own"`` starts a broker for this run only (a shared broker's
    other producers add work to the same topics: the stages report it as ``foreign``).
    ``postgres_url`` defaults to FJO_TEST_POSTGRES_URL or var/postgres/url. Without them
    the Kafka backend and the ceiling are skipped (and say so).
    """
    work = (work_dir or ROOT / "var" / "bench-pipeline").resolve()
    work.mkdir(parents=True, exist_ok=True)
    with _broker(kafka_bootstrap, work / "kafka-broker") as bootstrap:
        return _run(
            records=records,
            spine_size=spine_size,
            seed=seed,
            backends=backends,
            kafka_bootstrap=bootstrap,
            postgres_url=postgres_url or _default_postgres(),
            ceiling=ceiling,
            part_bytes=part_bytes,
            drain_timeout_s=drain_timeout_s,
            work=work,
            write=write,
            results_dir=results_dir,
            log=log,
            own_broker=kafka_bootstrap == "own",
        )


@contextlib.contextmanager
def _broker(bootstrap: str | None, state_dir: Path) -> Iterator[str | None]:
    """``"own"``: a broker of this run's own (``scripts/kafka.sh`` in ``state_dir``), so no
    other producer shares its topics; else the address given or the default one."""
    if bootstrap != "own":
        yield bootstrap or default_bootstrap()
        return
    env = dict(os.environ, FJO_KAFKA_STATE_DIR=str(state_dir))
    script = str(ROOT / "scripts" / "kafka.sh")
    done = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/kafka.sh start failed: {done.stderr[-2000:]}")
    try:
        yield done.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)


def _run(
    *,
    records: int,
    spine_size: int,
    seed: int,
    backends: tuple[str, ...],
    kafka_bootstrap: str | None,
    postgres_url: str | None,
    ceiling: bool,
    part_bytes: int,
    drain_timeout_s: float,
    work: Path,
    write: bool,
    results_dir: Path | None,
    log: Callable[[str], None],
    own_broker: bool,
) -> dict[str, Any]:
    skipped: dict[str, str] = {}
    results: dict[str, Any] = {}
    replay: dict[str, Any] | None = None
    world_dir = work / "world"
    if world_dir.exists():
        shutil.rmtree(world_dir)
    w = build_workload(world_dir, records=records, spine_size=spine_size, seed=seed)
    log(
        f"bench pipeline: world: spine {w.spine_valid}, incoming {w.incoming_valid} valid "
        f"(+{w.incoming_invalid} invalid), {w.incoming_persons} person records"
    )
    for name in backends:
        stack: Stack
        if name == "embedded":
            stack = EmbeddedStack(work / "embedded", echo=log)
        elif name == "kafka":
            if not kafka_bootstrap or not postgres_url:
                skipped["kafka"] = "no Kafka bootstrap address or PostgreSQL URL"
                continue
            stack = KafkaStack(
                work / "kafka", kafka_bootstrap, postgres_url, label="bench-pipeline"
            )
        else:
            raise ValueError(f"unknown backend {name!r} (embedded, kafka)")
        figures, rep = run_on(
            stack, w, part_bytes=part_bytes, drain_timeout_s=drain_timeout_s, log=log
        )
        results[name] = figures
        if replay is None or name == "kafka":
            replay = rep
        log(
            f"bench pipeline: {name}: {figures['records_per_s']} records/s end to end, "
            f"latency {figures['latency_ms']['complete']}"
        )
    ceiling_result: dict[str, Any] | None = None
    if not ceiling:
        skipped["ceiling"] = "not asked for"
    elif not kafka_bootstrap:
        skipped["ceiling"] = "no Kafka bootstrap address"
    elif replay is None:
        skipped["ceiling"] = "no pipeline run to take the messages from"
    else:
        # A ceiling is the most the transport carries: the best of a few runs (one run
        # sometimes stalls for seconds right after the pipeline's stack stopped).
        runs = [
            run_ceiling(
                kafka_bootstrap,
                replay,
                work_dir=work / f"ceiling-{i}",
                timeout_s=drain_timeout_s,
                log=log,
            )
            for i in range(CEILING_RUNS)
        ]
        ceiling_result = max(runs, key=lambda r: r["records_per_s"] or 0)
        ceiling_result["runs_records_per_s"] = [r["records_per_s"] for r in runs]
        log(
            f"bench pipeline: ceiling: {ceiling_result['records_per_s']} records/s, "
            f"latency {ceiling_result['latency_ms']['complete']}"
        )
    ratios: dict[str, float] = {}
    if ceiling_result and ceiling_result["records_per_s"]:
        for name, figures in results.items():
            if figures["records_per_s"]:
                ratios[name] = round(figures["records_per_s"] / ceiling_result["records_per_s"], 4)
    payload: dict[str, Any] = {
        "benchmark": "pipeline",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": {**environment(), "kafka_python": kafka.__version__},
        "parameters": {
            "records_target": records,
            "world": w.config,
            "spine_records": w.spine_valid,
            "incoming_valid": w.incoming_valid,
            "incoming_invalid": w.incoming_invalid,
            "incoming_person_records": w.incoming_persons,
            "mean_line_bytes": w.mean_line_bytes,
            "part_bytes": part_bytes,
            "backends": list(backends),
            "kafka_bootstrap": kafka_bootstrap if "kafka" in results or ceiling_result else None,
            "kafka_broker": "own (scripts/kafka.sh, this run only)" if own_broker else "given",
            "ceiling_producer": PRODUCER_SETTINGS,
            "ceiling_max_records_per_poll": MAX_RECORDS,
            "measures": {
                "received": "ingest.records.v1 envelope time (set while ingest handles the "
                "partner's request)",
                "stored": "access_research_records.received_at (written in the access "
                "worker's batch transaction, before its commit)",
                "linked": "first access_link_results.received_at of the record",
                "complete": "stored, and linked for child and adult-party records",
                "records_per_s": "complete records / (last complete - first push request)",
            },
        },
        "results": results,
        "ceiling": ceiling_result,
        "ratio_to_ceiling": ratios,
        "goal_ratio": 0.5,
        "skipped": skipped,
    }
    if write:
        path = write_result("pipeline", payload, results_dir)
        payload["written_to"] = str(path)
        log(f"bench pipeline: written to {path}")
    return payload


def _default_postgres() -> str | None:
    return local_service(("FJO_POSTGRES_URL", "FJO_TEST_POSTGRES_URL"), "postgres/url")
