"""Linkage benchmarks, ours against Splink in the same run, results as JSON in bench/results/.

    uv run python -m bench.link_benchmark synth   [--spine 20000 --incoming 3000 --seed 1]
    uv run python -m bench.link_benchmark febrl
    uv run python -m bench.link_benchmark speed   [--spine 200000 --incoming 20000 --seed 5]
    uv run python -m bench.link_benchmark latency [--spine 1000000 --queries 2000]

Splink (its current PyPI release) is installed into bench/.venv-splink with ``uv venv`` and
``uv pip install splink recordlinkage`` on first use and run there as a subprocess on the
same clear-text CSVs (bench/link_splink_runner.py). Ours encodes the CSVs with pseudonymise's
split and links on the encodings only (fjo/link_batch.py, run by bench/link_ours_runner.py).
Both run as processes of their own: wall time and peak memory (PSS of the process tree) are
measured the same way for both. Synthetic runs report precision, recall and F1 overall and
per subset (twins, siblings, moved families, common names, people not on the spine by kind,
...: synth.population.SUBSETS) for both linkers.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench._common import run_measured
from synth.population import CSV_COLUMNS, SPINE_EXTRA_COLUMNS, SUBSETS, SynthConfig, generate

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".venv-splink"
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench-link"


def splink_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["uv", "venv", "-p", "3.11", str(VENV)], check=True)
        subprocess.run(
            ["uv", "pip", "install", "-p", str(py), "splink", "recordlinkage"], check=True
        )
    return py


def splink_version() -> str:
    out = subprocess.run(
        [str(splink_python()), "-c", "import splink;print(splink.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def write_csv(path: Path, rows: list[dict[str, str]], cols: tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def metrics(pred: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    tp = sum(1 for k, v in pred.items() if v and truth.get(k) == v)
    fp = sum(1 for k, v in pred.items() if v and truth.get(k) != v)
    fn = sum(1 for k, v in truth.items() if v and pred.get(k) != v)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def read_predictions(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return {r["incoming_id"]: r["spine_id"] for r in csv.DictReader(fh)}


def read_candidates(path: Path) -> dict[str, tuple[str, float]]:
    """incoming id -> (best candidate, its probability), linked or not."""
    with open(path, newline="") as fh:
        return {
            r["incoming_id"]: (
                r.get("candidate_id") or r["spine_id"],
                float(r["match_probability"]),
            )
            for r in csv.DictReader(fh)
        }


def best_threshold(cands: dict[str, tuple[str, float]], truth: dict[str, str]) -> dict:
    """The threshold on the best candidate's probability that gives the highest F1."""
    best: dict = {}
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999):
        pred = {k: (c if p >= t else "") for k, (c, p) in cands.items()}
        m = metrics(pred, truth)
        if not best or m["f1"] > best["f1"]:
            best = {"threshold": t, **m}
    return best


def subset_table(
    pred: dict[str, str], truth: dict[str, str], subsets: dict[str, tuple[str, ...]]
) -> dict[str, dict[str, int]]:
    """Per subset, records that were: ``correct`` (linked to their spine person, or left
    unlinked when they are not on the spine), ``wrong`` (linked to another person) and
    ``missed`` (on the spine, left unlinked); the three add up to ``n``."""
    table: dict[str, dict[str, int]] = {}
    for rid, true in truth.items():
        got = pred.get(rid, "")
        outcome = "correct" if got == true else ("wrong" if got else "missed")
        for tag in ("all", *subsets.get(rid, ())):
            row = table.setdefault(tag, {"n": 0, "correct": 0, "wrong": 0, "missed": 0})
            row["n"] += 1
            row[outcome] += 1
    order = {t: i for i, t in enumerate(("all", *SUBSETS))}
    return dict(sorted(table.items(), key=lambda kv: order.get(kv[0], len(order))))


def format_subsets(ours: dict[str, dict[str, int]], theirs: dict[str, dict[str, int]]) -> str:
    """A Markdown table of both linkers' outcomes per subset (counts and % of the subset)."""

    def cells(row: dict[str, int] | None) -> str:
        if not row:
            return "| | "
        n = row["n"]
        return " | ".join(
            f"{row[k]} ({100 * row[k] / n:.1f})" for k in ("correct", "wrong", "missed")
        )

    lines = [
        "| subset | n | ours correct | ours wrong | ours missed "
        "| Splink correct | Splink wrong | Splink missed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tag, row in ours.items():
        lines.append(f"| {tag} | {row['n']} | {cells(row)} | {cells(theirs.get(tag))} |")
    return "\n".join(lines)


def run_ours(spine: Path, incoming: Path, out: Path) -> dict[str, float]:
    tj = out.with_suffix(".timings.json")
    cmd = [sys.executable, "-m", "bench.link_ours_runner", str(spine), str(incoming), str(out)]
    measured = run_measured([*cmd, str(tj)])
    return {**json.loads(tj.read_text()), **measured}


def run_splink(spine: Path, incoming: Path, out: Path, *extra: str) -> dict[str, float]:
    tj = out.with_suffix(".timings.json")
    script = ROOT / "bench" / "link_splink_runner.py"
    cmd = [str(splink_python()), str(script), str(spine), str(incoming), str(out), str(tj)]
    measured = run_measured([*cmd, *extra])
    return {**json.loads(tj.read_text()), **measured}


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    path = RESULTS / f"link_{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def synth_files(
    spine_n: int, incoming_n: int, seed: int
) -> tuple[Path, Path, dict[str, str], dict[str, tuple[str, ...]]]:
    """Spine and incoming CSVs of one synthetic population, the truth and the subsets (also
    written as truth.csv: incoming_id, spine_id, subsets)."""
    d = WORK / f"synth-{spine_n}-{incoming_n}-{seed}"
    data = generate(SynthConfig(seed=seed, spine_size=spine_n, incoming_size=incoming_n))
    write_csv(d / "spine.csv", data.spine, CSV_COLUMNS + SPINE_EXTRA_COLUMNS)
    write_csv(d / "incoming.csv", data.incoming, CSV_COLUMNS)
    truth_rows = [
        {"incoming_id": k, "spine_id": v, "subsets": ";".join(data.subsets[k])}
        for k, v in data.truth.items()
    ]
    write_csv(d / "truth.csv", truth_rows, ("incoming_id", "spine_id", "subsets"))
    return d / "spine.csv", d / "incoming.csv", data.truth, data.subsets


def accuracy(
    name: str,
    spine: Path,
    incoming: Path,
    truth: dict[str, str],
    subsets: dict[str, tuple[str, ...]] | None = None,
    **extra,
) -> dict:
    gc.collect()
    ours = run_ours(spine, incoming, spine.parent / "ours.csv")
    theirs = run_splink(spine, incoming, spine.parent / "splink.csv")
    ours_pred = read_predictions(spine.parent / "ours.csv")
    splink_pred = read_predictions(spine.parent / "splink.csv")
    result = {
        "benchmark": name,
        "spine": len(spine.read_text().splitlines()) - 1,
        "incoming": len(truth),
        "true_links": sum(1 for v in truth.values() if v),
        "ours": {
            **metrics(ours_pred, truth),
            **ours,
            "input": "HMAC tokens and Bloom encodings from pseudonymise's split",
        },
        "splink": {
            **metrics(splink_pred, truth),
            "best_threshold": best_threshold(read_candidates(spine.parent / "splink.csv"), truth),
            **theirs,
            "version": splink_version(),
            "input": "clear text",
            "threshold": 0.9,
        },
        **extra,
    }
    if subsets:
        result["ours"]["subsets"] = subset_table(ours_pred, truth, subsets)
        result["splink"]["subsets"] = subset_table(splink_pred, truth, subsets)
    brief = {k: {x: y for x, y in result[k].items() if x != "subsets"} for k in ("ours", "splink")}
    print(json.dumps(brief, indent=1))
    if subsets:
        print(format_subsets(result["ours"]["subsets"], result["splink"]["subsets"]))
    return result


def febrl() -> dict:
    d = WORK / "febrl4"
    d.mkdir(parents=True, exist_ok=True)
    code = f"""
import csv
from recordlinkage.datasets import load_febrl4
a, b = load_febrl4()
def rows(df):
    for rid, r in df.fillna('').iterrows():
        dob = str(r['date_of_birth'])
        dob = f"{{dob[:4]}}-{{dob[4:6]}}-{{dob[6:8]}}" if len(dob) == 8 else ''
        addr = ' '.join(str(r[c]) for c in ('street_number', 'address_1', 'address_2', 'suburb',
                                             'postcode', 'state') if str(r[c]))
        yield {{'id': rid, 'given_name': r['given_name'], 'surname': r['surname'],
               'date_of_birth': dob, 'sex': '', 'postcode': '', 'address': addr,
               'nhs_number': ''}}
cols = {list(CSV_COLUMNS)!r}
for name, df in (('spine', a), ('incoming', b)):
    with open('{d}/' + name + '.csv', 'w', newline='') as fh:
        w = csv.DictWriter(fh, fieldnames=cols); w.writeheader(); w.writerows(rows(df))
"""
    subprocess.run([str(splink_python()), "-c", code], check=True)
    truth = {}
    with open(d / "incoming.csv") as fh:
        for r in csv.DictReader(fh):
            truth[r["id"]] = r["id"].replace("-dup-", "-org-").replace("rec-", "rec-")
    # FEBRL4: record rec-N-dup-0 in B matches rec-N-org in A.
    truth = {k: k.split("-dup")[0] + "-org" for k in truth}
    return accuracy(
        "febrl4",
        d / "spine.csv",
        d / "incoming.csv",
        truth,
        note="FEBRL4 from recordlinkage.load_febrl4; A is the spine, B incoming; "
        "Australian postcodes are not UK postcodes, so both linkers get them "
        "inside the address text only",
    )


def latency(spine_n: int, queries: int) -> dict:
    """Single-record streaming lookups against an in-memory spine index, p50/p99, ours and
    Splink's (predict_between one record against the registered spine; score_pair)."""
    from fjo.link_batch import encode_rows, link_records, read_csv
    from services.link.domain import CompiledModel, Linker, SpineIndex, default_model

    spine_csv, incoming_csv, _, _ = synth_files(spine_n, max(queries, 5000), 11)
    key = hashlib.sha256(b"bench-latency").digest()
    t = time.perf_counter()
    spine = encode_rows(read_csv(spine_csv), key, processes=2, model=default_model())
    incoming = encode_rows(read_csv(incoming_csv), key, processes=1)
    encode_s = time.perf_counter() - t
    gc.collect()
    batch = link_records(spine, incoming)
    del spine
    gc.collect()
    index: SpineIndex = batch.index
    linker = Linker(CompiledModel(batch.model, index.schema), index)
    linker.refresh()
    lat = []
    rng = random.Random(3)
    sample = rng.sample(incoming, min(queries, len(incoming)))
    gc.disable()  # as a tuned worker would run: no collector pauses inside a lookup
    for rec in sample:
        t = time.perf_counter()
        linker.link(rec)
        lat.append((time.perf_counter() - t) * 1000)
    gc.enable()
    lat.sort()
    ours = {
        "p50_ms": round(lat[len(lat) // 2], 3),
        "p99_ms": round(lat[int(len(lat) * 0.99)], 3),
        "max_ms": round(lat[-1], 3),
        "queries": len(lat),
        "encode_s": round(encode_s, 1),
        "index_s": round(batch.timings["index_s"], 1),
        "max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "what": "one record's linkage keys (as the worker receives them) -> compact layout, "
        "blocking lookups, scoring of every candidate, decision; in-process",
    }
    del batch, index, linker
    gc.collect()
    n = min(queries, 200)
    splink = run_splink(
        spine_csv,
        incoming_csv,
        spine_csv.parent / "splink.csv",
        "--latency",
        str(n),
        "--stream",
        str(n),
    )
    return {
        "spine": spine_n,
        "ours": ours,
        "splink": {
            **splink,
            "version": splink_version(),
            "what": "predict_between(one registered record, the registered spine) per call; "
            "score_pair for one pair",
        },
    }


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "synth"

    def opt(name: str, default: int) -> int:
        return int(argv[argv.index(name) + 1]) if name in argv else default

    if cmd == "synth":
        spine_n, incoming_n = opt("--spine", 20_000), opt("--incoming", 3_000)
        seed = opt("--seed", 1)
        s, i, truth, subsets = synth_files(spine_n, incoming_n, seed)
        res = accuracy("synth_family", s, i, truth, subsets, seed=seed)
        print(save(f"synth_{spine_n}_seed{seed}", res))
    elif cmd == "febrl":
        print(save("febrl4", febrl()))
    elif cmd == "speed":
        spine_n, incoming_n = opt("--spine", 200_000), opt("--incoming", 20_000)
        seed = opt("--seed", 5)
        s, i, truth, subsets = synth_files(spine_n, incoming_n, seed)
        res = accuracy("speed", s, i, truth, subsets, seed=seed)
        print(save(f"speed_{spine_n}x{incoming_n}_seed{seed}", res))
    elif cmd == "latency":
        res = latency(opt("--spine", 1_000_000), opt("--queries", 2000))
        print(json.dumps(res, indent=1))
        print(save(f"latency_{opt('--spine', 1_000_000)}", res))


if __name__ == "__main__":
    main(sys.argv[1:])
