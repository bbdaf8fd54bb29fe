"""Runs fjo's batch linkage (``fjo.link_batch.run_batch``) on clear-text CSVs in a process of
its own, so the benchmark measures its time and memory the same way as Splink's.

The master key is fixed (a benchmark's encodings are thrown away with the run, and a fixed
key makes reruns give the same Bloom bits and so the same figures).

Usage: python -m bench.link_ours_runner SPINE.csv INCOMING.csv OUT.csv TIMINGS.json
       [--processes 2]
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
from pathlib import Path

from fjo.link_batch import run_batch

BENCH_KEY = hashlib.sha256(b"bench-ephemeral").digest()


def main(argv: list[str]) -> None:
    spine, incoming, out, timings_json = argv[:4]
    processes = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 2
    result = run_batch(spine, incoming, out, processes=processes, master_key=BENCH_KEY)
    timings: dict[str, float] = {k: round(v, 2) for k, v in result.timings.items()}
    timings["pairs_scored"] = result.pairs_scored
    timings["max_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    Path(timings_json).write_text(json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1:])
