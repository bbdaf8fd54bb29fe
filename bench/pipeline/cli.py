"""``python -m bench.pipeline`` (and ``fjo bench pipeline``): run and print the summary."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

import bench.pipeline
from bench.pipeline.run import run_pipeline_benchmark

__all__ = ["main"]


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.pipeline``: run and print the summary."""
    argv = sys.argv[1:] if argv is None else argv
    # SIGTERM (a test's timeout, a CI cancel) unwinds like Ctrl-C: the stacks are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=bench.pipeline.__doc__
    )
    parser.add_argument("--records", type=int, default=3000, help="incoming partner records")
    parser.add_argument("--spine-size", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20251124)
    parser.add_argument("--backends", default="embedded,kafka", help="embedded, kafka")
    parser.add_argument(
        "--kafka-bootstrap",
        default=None,
        help="default var/kafka/bootstrap; 'own': a broker of this run's own (scripts/kafka.sh)",
    )
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--part-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="seconds per drain")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    payload = run_pipeline_benchmark(
        records=args.records,
        spine_size=args.spine_size,
        seed=args.seed,
        backends=tuple(b.strip() for b in args.backends.split(",") if b.strip()),
        kafka_bootstrap=args.kafka_bootstrap,
        postgres_url=args.postgres_url,
        ceiling=not args.no_ceiling,
        part_bytes=args.part_bytes,
        work_dir=args.work_dir,
        results_dir=args.results_dir,
        drain_timeout_s=args.drain_timeout,
        write=not args.no_write,
    )
    summary = {
        name: {k: r[k] for k in ("records_per_s", "latency_ms", "records")}
        for name, r in payload["results"].items()
    }
    print(
        json.dumps(
            {
                "results": summary,
                "ceiling": payload["ceiling"],
                "ratio_to_ceiling": payload["ratio_to_ceiling"],
                "skipped": payload["skipped"],
            },
            indent=2,
        )
    )
