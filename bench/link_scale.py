"""Link at population scale: the spine index at 200k, 1M and 5M people, one and three replicas.

    uv run fjo bench link-scale [--sizes 200000,1000000,5000000] [--queries 2000]
    uv run python -m bench.link_scale [--sizes ...]

For each spine size it reports, in ``bench/results/link-scale-*.json``:

* **build**: seconds to build the index from encoded rows (every rule's blocking keys on
  whole columns, sorted; ids hashed; term frequencies), to write it as a snapshot, and for a
  fresh process to start from the snapshot (memory-mapped) ready to link;
* **memory**: bytes per spine person: the snapshot's files (what a machine holds once, in
  the page cache, for all its replicas), and in each replica process after it linked the
  queries, its anonymous (private) memory, its resident set and its proportional set size
  (file pages shared by N replicas count 1/N in each), all measured from /proc;
* **streaming**: p50/p95/p99/max of one incoming record's lookup, scoring and decision, in
  process, for N = 1 and N = 3 replica processes at once (the same snapshot files): the
  wall-clock time and the CPU time of the lookup's thread (on a shared machine, and under
  ``nice``, the wall time's tail is mostly waiting for a core: the involuntary context
  switches during the lookups are counted too), first right after start-up ("cold": the
  snapshot's pages are touched for the first time) and again after the batch ("warm");
* **batch**: incoming records linked per second per replica and in total, N = 1 and N = 3.

Spine and queries come from ``synth.population`` (the linkage benchmark's generator),
encoded with pseudonymise's own split under a fixed benchmark key, in chunks of at most a
million people: 5M is five independently seeded 1M populations over the same name and
postcode tables (so blocks grow as they would in a bigger population), 1M is the first of
them, 200k one of its own. Encoded chunks are cached under ``var/bench-link-scale/`` (not
git): encoding five million people takes the better part of an hour on two cores.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import environment, write_result

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench-link-scale"
CHUNK = 1_000_000
SEED = 20_260_501
KEY = hashlib.sha256(b"fjo bench link-scale: not a secret, never a real key").digest()
QUERIES_PER_CHUNK = 20_000


def _log(msg: str) -> None:
    print(f"[link-scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the data


def _chunks(size: int) -> list[tuple[int, int]]:
    """(seed, people) of the populations a spine of ``size`` is made of."""
    if size <= CHUNK:
        return [(SEED + (0 if size == CHUNK else size), size)]
    assert size % CHUNK == 0, "spines above a million are whole millions"
    return [(SEED + k, CHUNK) for k in range(size // CHUNK)]


def _encoded_chunk(seed: int, people: int) -> tuple[Path, Path]:
    """The cached encoded spine rows and incoming queries of one population."""
    from fjo.link_batch import encode_rows
    from services.link.domain import SpineIndex, default_model
    from services.link.domain.columns import RecordColumns
    from synth.population import SynthConfig, generate

    folder = CACHE / f"chunk-{seed}-{people}"
    spine_dir, query_dir = folder / "spine", folder / "queries"
    if (spine_dir / "columns.json").exists() and (query_dir / "columns.json").exists():
        return spine_dir, query_dir
    model = default_model()
    schema = SpineIndex(model).schema
    _log(f"generating a population of {people:,} (seed {seed})")
    data = generate(SynthConfig(seed=seed, spine_size=people, incoming_size=QUERIES_PER_CHUNK))
    spine_rows, incoming_rows = data.spine, data.incoming
    del data
    gc.collect()
    for row in spine_rows:
        row["id"] = f"{seed}-{row['id']}"  # unique across the populations of one spine
    for target, rows in ((spine_dir, spine_rows), (query_dir, incoming_rows)):
        _log(f"encoding {len(rows):,} rows with pseudonymise's split -> {target}")
        t = time.perf_counter()
        store = RecordColumns(schema, capacity=len(rows))
        for lo in range(0, len(rows), 100_000):
            part = encode_rows(rows[lo : lo + 100_000], KEY, processes=2, model=model)
            store.append([i for i, _ in part], [c for _, c in part], 0)
            del part
        _log(f"  {time.perf_counter() - t:.0f} s")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        store.save(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return spine_dir, query_dir


def prepare(size: int) -> dict[str, Any]:
    """Encoded chunks (cached), then the index built from them, written as a snapshot."""
    from services.link.domain import SpineIndex, default_model, estimate_u
    from services.link.domain.columns import RecordColumns

    parts = [_encoded_chunk(seed, people) for seed, people in _chunks(size)]
    model = default_model()
    schema = SpineIndex(model).schema
    stores = [RecordColumns.load(spine, schema, mmap=True) for spine, _ in parts]
    gc.collect()
    t = time.perf_counter()
    index = SpineIndex.build(model, stores)
    build_s = time.perf_counter() - t
    assert len(index) == size, (len(index), size)
    t = time.perf_counter()
    fitted = estimate_u(model, index, pairs=min(200_000, 50 * size))
    fit_s = time.perf_counter() - t
    snapshot = CACHE / f"snapshot-{size}"
    shutil.rmtree(snapshot, ignore_errors=True)
    t = time.perf_counter()
    index.save(snapshot)
    save_s = time.perf_counter() - t
    (snapshot / "model.json").write_text(fitted.to_json())
    files = sum(f.stat().st_size for f in snapshot.rglob("*") if f.is_file())
    by_part: dict[str, int] = {}
    for f in snapshot.rglob("*.npy"):
        part = f.name.split("_")[0].removesuffix(".npy").rstrip("0123456789")
        part = f"rows/{part}" if f.parent.name == "rows" else part
        by_part[part] = by_part.get(part, 0) + f.stat().st_size
    held = index.nbytes()
    del index, stores
    gc.collect()
    return {
        "build_s": round(build_s, 1),
        "fit_u_s": round(fit_s, 1),
        "snapshot_write_s": round(save_s, 1),
        "snapshot_bytes": files,
        "snapshot_bytes_by_part": by_part,
        "index_bytes": held,
        "snapshot": str(snapshot),
        "queries": str(parts[0][1]),
    }


# ------------------------------------------------------------------------ one replica


def _proc_memory() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
            elif key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                out[key] = int(value.split()[0])
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Pss", "Pss_Anon", "Pss_File"):
                out[key] = int(value.split()[0]) * 1024
    return out


def schema_of(snapshot: Path) -> Any:
    from services.link.domain import KeySchema, LinkageModel

    return KeySchema(LinkageModel.from_json((snapshot / "model.json").read_text()))


def _percentiles(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    n = len(v)
    at = {
        "p50": v[n // 2],
        "p95": v[min(n - 1, int(n * 0.95))],
        "p99": v[min(n - 1, int(n * 0.99))],
    }
    return {
        **{k: round(x, 3) for k, x in at.items()},
        "max": round(v[-1], 3),
        "mean": round(sum(v) / n, 3),
    }


def _timed(linker: Any, ids: list[str], compact: list[tuple], order: list[int]) -> dict[str, Any]:
    """Each query of ``order`` linked alone: wall and thread CPU milliseconds, candidates."""
    wall, cpu, cands = [], [], []
    before = _proc_memory()["nonvoluntary_ctxt_switches"]
    for i in order:
        c, t = time.thread_time_ns(), time.perf_counter_ns()
        d = linker.link_compact(ids[i], compact[i])
        wall.append((time.perf_counter_ns() - t) / 1e6)
        cpu.append((time.thread_time_ns() - c) / 1e6)
        cands.append(d.candidates)
    slowest = max(range(len(order)), key=lambda k: cpu[k])
    return {
        "wall_ms": _percentiles(wall),
        "cpu_ms": _percentiles(cpu),
        "involuntary_context_switches": _proc_memory()["nonvoluntary_ctxt_switches"] - before,
        "slowest_cpu": {"cpu_ms": round(cpu[slowest], 3), "candidates": cands[slowest]},
    }


def replica(snapshot: Path, queries: Path, count: int, seed: int, start_at: float) -> dict:
    """One replica process: start from the snapshot, then link ``count`` queries one by one
    (timed), then all queries as a batch, then the ``count`` queries again (timed, warm);
    its memory after each step."""
    from services.link.domain import CompiledModel, LinkageModel, Linker, SpineIndex
    from services.link.domain.columns import RecordColumns

    store = RecordColumns.load(queries, schema_of(snapshot), mmap=False)
    ids = [store.record_id(r) for r in range(len(store))]
    compact = store.records(np.arange(len(store)))
    del store
    gc.collect()
    baseline = _proc_memory()  # the queries are in memory already: not counted
    t = time.perf_counter()
    model = LinkageModel.from_json((snapshot / "model.json").read_text())
    index = SpineIndex.load(snapshot, model)
    index.model = model
    linker = Linker(CompiledModel(model, index.schema), index)
    linker.refresh()
    start_s = time.perf_counter() - t
    gc.collect()
    loaded = _proc_memory()
    rng = random.Random(seed)
    order = rng.sample(range(len(compact)), min(count, len(compact)))
    while time.time() < start_at:  # the replicas of one round run their lookups together
        time.sleep(0.01)
    gc.disable()  # as a tuned worker runs: no collector pause inside a lookup
    cold = _timed(linker, ids, compact, order)
    t = time.perf_counter()
    decisions = [linker.link_compact(ids[i], compact[i]) for i in range(len(compact))]
    batch_s = time.perf_counter() - t
    warm = _timed(linker, ids, compact, order)
    gc.enable()
    cands = sorted(d.candidates for d in decisions)
    linked = sum(1 for d in decisions if d.spine_id)
    n_batch = len(decisions)
    del decisions
    gc.collect()
    after = _proc_memory()
    return {
        "start_from_snapshot_s": round(start_s, 2),
        "lookups": len(order),
        "cold": cold,
        "warm": warm,
        "batch_records": n_batch,
        "batch_records_per_s": round(n_batch / batch_s, 1),
        "linked": linked,
        "candidates_p50": cands[n_batch // 2],
        "candidates_p99": cands[int(n_batch * 0.99)],
        "memory": {"baseline": baseline, "loaded": loaded, "after": after},
        "skipped_blocks": index.skipped_blocks,
    }


def _round(snapshot: Path, queries: Path, replicas: int, count: int) -> list[dict]:
    start_at = time.time() + 20.0 + 10.0 * replicas  # every replica loaded by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.link_scale",
                "replica",
                str(snapshot),
                str(queries),
                str(count),
                str(seed),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for seed in range(replicas)
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"a replica failed ({p.returncode})")
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def _summary(size: int, runs: list[dict], files: int) -> dict[str, Any]:
    def per_person(key: str, when: str = "after") -> float:
        return round(
            max(r["memory"][when][key] - r["memory"]["baseline"][key] for r in runs) / size, 1
        )

    def worst(when: str, clock: str) -> dict[str, float]:
        return {k: max(r[when][clock][k] for r in runs) for k in ("p50", "p95", "p99", "max")}

    return {
        "replicas": len(runs),
        "streaming_ms": {
            f"{when}_{clock}": worst(when, f"{clock}_ms")
            for when in ("cold", "warm")
            for clock in ("wall", "cpu")
        },
        "involuntary_context_switches": sum(
            r[w]["involuntary_context_switches"] for r in runs for w in ("cold", "warm")
        ),
        "batch_records_per_s_per_replica": round(
            sum(r["batch_records_per_s"] for r in runs) / len(runs), 1
        ),
        "batch_records_per_s_total": round(sum(r["batch_records_per_s"] for r in runs), 1),
        "start_from_snapshot_s": max(r["start_from_snapshot_s"] for r in runs),
        "bytes_per_person": {
            "snapshot_files": round(files / size, 1),
            "anonymous": per_person("RssAnon"),
            "resident": per_person("VmRSS"),
            "resident_file": per_person("RssFile"),
            "proportional": per_person("Pss"),
            "proportional_file": per_person("Pss_File"),
        },
        "candidates_p50": max(r["candidates_p50"] for r in runs),
        "candidates_p99": max(r["candidates_p99"] for r in runs),
        "runs": runs,
    }


def run(sizes: list[int], queries: int, replica_counts: list[int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in sizes:
        _log(f"spine of {size:,}")
        prepared = prepare(size)
        snapshot, query_dir = Path(prepared["snapshot"]), Path(prepared["queries"])
        rounds = {}
        for n in replica_counts:
            _log(f"  {n} replica(s)")
            rounds[f"n{n}"] = _summary(
                size, _round(snapshot, query_dir, n, queries), prepared["snapshot_bytes"]
            )
        one = rounds.get("n1")
        results[str(size)] = {
            "spine": size,
            "build": {k: prepared[k] for k in ("build_s", "fit_u_s", "snapshot_write_s")},
            "snapshot_bytes_per_person": round(prepared["snapshot_bytes"] / size, 1),
            "snapshot_bytes_per_person_by_part": {
                k: round(v / size, 1)
                for k, v in sorted(prepared["snapshot_bytes_by_part"].items(), key=lambda x: -x[1])
            },
            # the baseline of this run: the same index in memory, as built (dense columns)
            "snapshot_to_in_memory_ratio": round(
                prepared["snapshot_bytes"] / sum(prepared["index_bytes"].values()), 3
            ),
            "index_bytes_per_person": {
                k: round(v / size, 1) for k, v in prepared["index_bytes"].items()
            },
            **rounds,
            "goal": {
                "bytes_per_person_at_most": 2**30 // 2 // 1_000_000,
                "p99_ms_at_most_at_5M": 5.0,
                "met_bytes_n1_resident": one is not None
                and one["bytes_per_person"]["resident"] <= 536.9,
                "met_p99_n1_warm_cpu": one is not None
                and one["streaming_ms"]["warm_cpu"]["p99"] <= 5.0,
                "met_p99_n1_warm_wall": one is not None
                and one["streaming_ms"]["warm_wall"]["p99"] <= 5.0,
            },
        }
        _log(
            json.dumps(
                {k: v for k, v in results[str(size)].items() if k.startswith("n")}, default=str
            )[:2000]
        )
    return {
        "benchmark": "link-scale",
        "environment": environment(),
        "load_average": os.getloadavg(),
        "queries": queries,
        "results": results,
        "what": {
            "snapshot_files": "bytes of the snapshot's files per spine person: a machine holds "
            "them once in its page cache, however many replicas map them",
            "anonymous": "growth of the replica's private memory (RssAnon) from before the "
            "snapshot was loaded to after the queries: Python objects, term frequencies, the "
            "model and the arrays not memory-mapped",
            "resident": "growth of the replica's resident set (VmRSS): anonymous memory plus "
            "the snapshot pages the lookups touched",
            "resident_file": "growth of its file-backed resident pages (RssFile): the "
            "snapshot's pages it touched, shared with every process mapping the same files",
            "proportional": "growth of its proportional set size (Pss): resident, with each "
            "shared file page divided by the processes mapping it",
            "streaming_ms": "per lookup, worst replica: cold (the first lookups after start-up) "
            "and warm (the same lookups after the batch), wall clock and the thread's CPU time",
        },
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "replica":
        snapshot, queries, count, seed, start_at = argv[1:6]
        print(
            json.dumps(
                replica(Path(snapshot), Path(queries), int(count), int(seed), float(start_at))
            )
        )
        return
    parser = argparse.ArgumentParser(prog="python -m bench.link_scale")
    parser.add_argument("--sizes", default="200000,1000000,5000000")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--replicas", default="1,3")
    args = parser.parse_args(argv)
    result = run(
        [int(s) for s in args.sizes.split(",")],
        args.queries,
        [int(n) for n in args.replicas.split(",")],
    )
    path = write_result("link-scale", result)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
