"""Micro-benchmark: records per second through the pseudonymise split (pure domain, one core).

Generates synthetic child and adult-party records (Welsh and English names, hyphenated
surnames, placeholder babies, addresses on the synthetic postcode lookup), splits each one
with a fresh random key, and writes ``bench/results/pseudonymise-encoding.json``:
``{"records", "seconds", "records_per_s", "python", "timestamp", ...}``.

    uv run python -m bench.pseudonymise_encoding [--records 5000] [--profile]
    uv run python -m bench.pseudonymise_encoding --against-clkhash [--records 20000]

``--against-clkhash`` encodes the same synthetic rows with fjo (the split alone, and the batch
encoding: split plus link's compact layout) and with clkhash (installed on first use into
bench/.venv-clkhash, run there as bench/clkhash_runner.py), one process each, in the same
run, and writes ``bench/results/encoding-vs-clkhash.json`` with the ratios. The three are
interleaved repeat by repeat (fjo, then clkhash, then fjo...), so a change of load on a
shared machine falls on both; the ratios are given by wall time and by CPU time (the
process's own, which other processes' load changes least).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import platform
import pstats
import random
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.pseudonymise.data import SYNTHETIC_POSTCODE_LOOKUP
from services.pseudonymise.domain import (
    KeyRing,
    MasterKey,
    OnsPostcodeLookup,
    Pseudonymiser,
    load_ons_postcode_lookup,
    nhs_check_digit,
)

RESULT = Path(__file__).parent / "results" / "pseudonymise-encoding.json"

FORENAMES_M = ["Dafydd", "Rhys", "Owain", "Gethin", "Huw", "Jack", "Oliver", "Harry", "Noah",
               "Iwan", "Siôn", "Llywelyn", "Mohammed", "Thomas", "William", "Dylan", "Ioan",
               "Jacob", "Leo", "Osian", "Elis", "Charlie", "George", "Tomos", "Cai"]  # fmt: skip
FORENAMES_F = ["Catrin", "Ffion", "Seren", "Megan", "Cerys", "Olivia", "Amelia", "Isla", "Mali",
               "Lowri", "Siân", "Elin", "Nia", "Ava", "Grace", "Eleri", "Angharad", "Sophie",
               "Gwenllian", "Ruby", "Alys", "Freya", "Erin", "Poppy", "Efa"]  # fmt: skip
SURNAMES = ["Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Lewis", "Hughes",
            "Morgan", "Griffiths", "Edwards", "Smith", "Price", "Rees", "Jenkins", "Lloyd",
            "Powell", "Pritchard", "O'Brien", "McDonald", "Smith-Jones", "Ap Rhys", "Khan",
            "Taylor", "Brown", "Wilson", "Parry", "Bowen", "Llewellyn", "Vaughan"]  # fmt: skip
STREETS = ["Heol y Frenhines", "Stryd Fawr", "High Street", "Church Road", "Station Road",
           "Heol Las", "Victoria Gardens", "St Mary's Rd", "Ffordd yr Afon",
           "Park Crescent"]  # fmt: skip

CHILD_ROLES = {
    "record_id": "record_id", "case_id": "ref:case", "forename": "forename",
    "middle_names": "middle_names", "surname": "surname", "date_of_birth": "date_of_birth",
    "sex": "sex", "nhs_number": "nhs_number", "address": "address",
    "record_version": "content", "living_situation": "content",
}  # fmt: skip
ADULT_ROLES = {
    "record_id": "record_id", "case_id": "ref:case", "forename": "forename",
    "surname": "surname", "previous_surnames": "previous_surnames",
    "date_of_birth": "date_of_birth", "sex": "sex", "nhs_number": "nhs_number",
    "address": "address", "record_version": "content", "role": "content",
}  # fmt: skip


def _nhs_number(rng: random.Random) -> str:
    while True:
        first = f"{rng.randrange(400_000_000, 999_999_999):09d}"
        check = nhs_check_digit(first)
        if check is not None:
            return first + str(check)


def generate(n: int, seed: int = 42) -> list[tuple[dict[str, Any], str, dict[str, str]]]:
    """``n`` synthetic (record, record kind, roles); about a third adults, two thirds children."""
    rng = random.Random(seed)
    with SYNTHETIC_POSTCODE_LOOKUP.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        postcodes = [row["pcds"] for row in rows]
    out: list[tuple[dict[str, Any], str, dict[str, str]]] = []
    for i in range(n):
        sex = rng.choice([1, 2])
        forename = rng.choice(FORENAMES_M if sex == 1 else FORENAMES_F)
        surname = rng.choice(SURNAMES)
        address = {
            "line_1": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
            "line_2": rng.choice(["Caerdydd", "Abertawe", "Bangor", "Wrexham", "Bristol"]),
            "postcode": rng.choice(postcodes) if rng.random() > 0.05 else "ZZ99 9ZZ",
        }
        record: dict[str, Any] = {
            "record_id": f"R{i:07d}",
            "case_id": f"CASE{i // 3:06d}",
            "forename": forename,
            "surname": surname,
            "sex": sex,
            "nhs_number": _nhs_number(rng) if rng.random() > 0.2 else None,
            "address": address,
            "record_version": 1,
        }
        if i % 3 == 2:
            dob = date(1975, 1, 1) + timedelta(days=rng.randrange(365 * 25))
            record |= {
                "date_of_birth": dob.isoformat(),
                "previous_surnames": [rng.choice(SURNAMES)] if sex == 2 and rng.random() < 0.4
                else [],
                "role": "mother" if sex == 2 else "father",
            }  # fmt: skip
            out.append((record, "adult-party", ADULT_ROLES))
        else:
            dob = date(2005, 1, 1) + timedelta(days=rng.randrange(365 * 15))
            if rng.random() < 0.05:
                record["forename"] = rng.choice(["Baby", f"Baby of {surname}", "Unknown"])
            if rng.random() < 0.03:
                dob = date(dob.year, 1, 1)
            record |= {
                "date_of_birth": dob.isoformat(),
                "middle_names": rng.choice(FORENAMES_M + FORENAMES_F) if rng.random() < 0.5
                else None,
                "living_situation": rng.choice(["parents", "foster-care", "kinship-care"]),
            }  # fmt: skip
            out.append((record, "child", CHILD_ROLES))
    return out


def run(n: int, repeats: int = 3, profile: bool = False) -> dict[str, Any]:
    """Split ``n`` records ``repeats`` times, each time under a fresh key; keep the best run.

    Best-of is reported because the machine is shared (other processes only ever slow a run
    down); every run's time is in ``runs_seconds``.
    """
    workload = generate(n)
    postcodes = load_ons_postcode_lookup(SYNTHETIC_POSTCODE_LOOKUP)
    runs: list[float] = []
    cpu_runs: list[float] = []
    for _ in range(repeats):
        pseudonymiser = Pseudonymiser(KeyRing.single(MasterKey.generate()), postcodes)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        start, cpu_start = time.perf_counter(), time.process_time()
        for record, kind, roles in workload:
            pseudonymiser.split(record, source="cafcass-cymru", record_kind=kind, roles=roles)
        runs.append(time.perf_counter() - start)
        cpu_runs.append(time.process_time() - cpu_start)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    seconds = min(runs)
    return {
        "benchmark": "pseudonymise-encoding",
        "records": n,
        "seconds": round(seconds, 4),
        "records_per_s": round(n / seconds, 1),
        "runs_seconds": [round(r, 4) for r in runs],
        "cpu_seconds": round(min(cpu_runs), 4),
        "records_per_cpu_s": round(n / min(cpu_runs), 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "bloom_scheme": pseudonymiser.bloom_scheme,
        "profiled": profile,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


CLKHASH_VENV = Path(__file__).parent / ".venv-clkhash"
CLKHASH_RESULT = Path(__file__).parent / "results" / "encoding-vs-clkhash.json"


def clkhash_python() -> Path:
    """bench/.venv-clkhash's python, made on first use (``uv venv`` + ``uv pip install``)."""
    py = CLKHASH_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["uv", "venv", "-p", "3.11", str(CLKHASH_VENV)], check=True)
        subprocess.run(["uv", "pip", "install", "-p", str(py), "clkhash", "anonlink"], check=True)
    return py


def against_clkhash(n: int, repeats: int) -> dict[str, Any]:
    """Records/s encoding the same clear rows, one process each, in the same run: fjo's split
    alone (what pseudonymise publishes), fjo's batch encoding (split plus the compact layout
    link indexes) and clkhash's CLKs (bench/clkhash_runner.py). Best of ``repeats``."""
    from fjo.link_batch import encode_rows
    from services.link.domain import default_model
    from synth.population import CSV_COLUMNS, SynthConfig
    from synth.population import generate as generate_population

    data = generate_population(SynthConfig(seed=29, spine_size=n, incoming_size=0))
    rows = data.spine[:n]
    work = Path(__file__).resolve().parent.parent / "var" / "bench-encoding"
    work.mkdir(parents=True, exist_ok=True)
    rows_csv = work / "rows.csv"
    with rows_csv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    model = default_model()
    split_runs: list[float] = []
    batch_runs: list[float] = []
    split_cpu: list[float] = []
    batch_cpu: list[float] = []
    clk_runs: list[dict[str, Any]] = []
    theirs_json = work / "clkhash.json"
    python = clkhash_python()
    for _ in range(repeats):
        key = MasterKey.generate()
        pseudonymiser = Pseudonymiser(KeyRing.single(key), OnsPostcodeLookup([]))
        prepared = [_batch_record(r) for r in rows]
        start, cpu = time.perf_counter(), time.process_time()
        for record in prepared:
            pseudonymiser.split(
                record, source="batch", record_kind="person", roles=_BATCH_ROLES, unknown="drop"
            )
        split_runs.append(time.perf_counter() - start)
        split_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        encode_rows(rows, key.material, processes=1, model=model)
        batch_runs.append(time.perf_counter() - start)
        batch_cpu.append(time.process_time() - cpu)
        subprocess.run(
            [str(python), str(Path(__file__).parent / "clkhash_runner.py"),
             str(rows_csv), str(theirs_json), "--repeats", "1"],
            check=True,
        )  # fmt: skip
        clk_runs.append(json.loads(theirs_json.read_text()))
    theirs = min(clk_runs, key=lambda r: r["seconds"])
    theirs_cpu = min(r["cpu_seconds"] for r in clk_runs)
    theirs["runs_seconds"] = [r["seconds"] for r in clk_runs]
    theirs["cpu_runs_seconds"] = [r["cpu_seconds"] for r in clk_runs]
    split_rps = n / min(split_runs)
    batch_rps = n / min(batch_runs)
    split_cpu_rps, batch_cpu_rps, theirs_cpu_rps = (
        n / min(split_cpu),
        n / min(batch_cpu),
        n / theirs_cpu,
    )
    return {
        "benchmark": "encoding-vs-clkhash",
        "records": n,
        "fjo_split_records_per_s": round(split_rps, 1),
        "fjo_batch_encode_records_per_s": round(batch_rps, 1),
        "clkhash_records_per_s": theirs["records_per_s"],
        "ratio_split_vs_clkhash": round(split_rps / theirs["records_per_s"], 2),
        "ratio_batch_encode_vs_clkhash": round(batch_rps / theirs["records_per_s"], 2),
        "fjo_split_records_per_cpu_s": round(split_cpu_rps, 1),
        "fjo_batch_encode_records_per_cpu_s": round(batch_cpu_rps, 1),
        "clkhash_records_per_cpu_s": round(theirs_cpu_rps, 1),
        "cpu_ratio_split_vs_clkhash": round(split_cpu_rps / theirs_cpu_rps, 2),
        "cpu_ratio_batch_encode_vs_clkhash": round(batch_cpu_rps / theirs_cpu_rps, 2),
        "fjo_split_cpu_runs_s": [round(r, 3) for r in split_cpu],
        "fjo_batch_cpu_runs_s": [round(r, 3) for r in batch_cpu],
        "fjo_split_runs_s": [round(r, 3) for r in split_runs],
        "fjo_batch_runs_s": [round(r, 3) for r in batch_runs],
        "clkhash": theirs,
        "fjo_construction": "bf1: HMAC-SHA256 per bigram position (random hashing) under "
        "per-field subkeys, 2048 bits folded to 1024; 26 keyed HMAC tokens per record",
        "rows": "synthetic spine rows (synth.population, seed 29), the same CSV for both",
        "python": platform.python_version(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


_BATCH_ROLES = {
    "id": "record_id", "given_name": "forename", "surname": "surname",
    "date_of_birth": "date_of_birth", "sex": "sex", "postcode": "postcode",
    "address": "address", "nhs_number": "nhs_number",
}  # fmt: skip


def _batch_record(row: dict[str, str]) -> dict[str, Any]:
    return {k: (v or None) for k, v in row.items() if k in _BATCH_ROLES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument(
        "--against-clkhash",
        action="store_true",
        help="encode the same rows with clkhash too (bench/.venv-clkhash) and report the ratio",
    )
    args = parser.parse_args(argv)
    if args.against_clkhash:
        result = against_clkhash(args.records, args.repeats)
        CLKHASH_RESULT.parent.mkdir(parents=True, exist_ok=True)
        CLKHASH_RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
        return
    result = run(args.records, args.repeats, args.profile)
    if not args.profile:  # profiled timings are inflated; keep the file for real runs
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
