"""Encodes clear-text CSV rows with clkhash (anonlink's encoder); run by bench/.venv-clkhash.

The schema mirrors fjo's encoding as closely as clkhash allows: the same seven fields
(given name, surname, date of birth, sex, postcode, address, NHS number), bigrams of the
names, address and postcode, keyed hashing (``blakeHash``: BLAKE2b keyed per field with
keys derived by HKDF from the secret, clkhash's default hardened choice), a 2048-bit filter
XOR-folded once to 1024 bits like fjo's ``bf1``, and fjo's bits per token (30 for names, 10
for the address, 20 otherwise). One process (``max_workers=1``), best of ``--repeats``.

Usage: python bench/clkhash_runner.py ROWS.csv RESULT.json [--repeats 3]
"""

from __future__ import annotations

import csv
import json
import sys
import time

import clkhash
from clkhash.clk import generate_clks
from clkhash.schema import from_json_dict

COLUMNS = ("given_name", "surname", "date_of_birth", "sex", "postcode", "address", "nhs_number")
BITS = {"given_name": 30, "surname": 30, "address": 10}


def _feature(name: str) -> dict:
    return {
        "identifier": name,
        "format": {"type": "string", "encoding": "utf-8", "case": "mixed"},
        "hashing": {
            "comparison": {"type": "ngram", "n": 2},
            "strategy": {"bitsPerToken": BITS.get(name, 20)},
            "hash": {"type": "blakeHash"},
            "missingValue": {"sentinel": ""},
        },
    }


SCHEMA = {
    "version": 3,
    "clkConfig": {
        "l": 1024,  # after folding: a 2048-bit filter folded once
        "xor_folds": 1,
        "kdf": {
            "type": "HKDF",
            "hash": "SHA256",
            "salt": "ZmpvIGJlbmNobWFyayBzYWx0IGZvciBjbGtoYXNo",
            "info": "ZmpvLWJlbmNo",
            "keySize": 64,
        },
    },
    "features": [{"identifier": "id", "ignored": True}, *(_feature(c) for c in COLUMNS)],
}


def main(argv: list[str]) -> None:
    rows_csv, result_json = argv[:2]
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    with open(rows_csv, newline="", encoding="utf-8") as fh:
        rows = [[r["id"], *(r[c] for c in COLUMNS)] for r in csv.DictReader(fh)]
    schema = from_json_dict(SCHEMA)
    secret = b"fjo benchmark secret, thrown away with the run"
    runs, cpu_runs = [], []
    for _ in range(repeats):
        t, cpu = time.perf_counter(), time.process_time()
        clks = generate_clks(rows, schema, secret, validate=False, max_workers=1)
        runs.append(time.perf_counter() - t)
        cpu_runs.append(time.process_time() - cpu)
    assert len(clks) == len(rows)
    best = min(runs)
    result = {
        "records": len(rows),
        "seconds": round(best, 4),
        "records_per_s": round(len(rows) / best, 1),
        "runs_seconds": [round(r, 4) for r in runs],
        "cpu_seconds": round(min(cpu_runs), 4),
        "records_per_cpu_s": round(len(rows) / min(cpu_runs), 1),
        "cpu_runs_seconds": [round(r, 4) for r in cpu_runs],
        "clkhash": clkhash.__version__,
        "schema": "v3, 2048 bits xor-folded to 1024, blakeHash (keyed BLAKE2b, HKDF keys), "
        "bigrams of 7 fields, 30/30/10/20 bits per token",
    }
    with open(result_json, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
