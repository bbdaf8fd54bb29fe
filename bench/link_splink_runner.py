"""Runs Splink (DuckDB backend) on clear-text CSVs; executed by bench/.venv-splink's python.

Configured as Splink's documentation suggests for person data: cleaned inputs (lower-case
names, upper-case spaced postcodes, empty strings as nulls), ``ForenameSurnameComparison``
with term frequencies, ``DateOfBirthComparison``, ``PostcodeComparison``, exact sex and NHS
number, Jaro-Winkler on the address; blocking on several keys; u by random sampling, m by EM
on two blocking rules (names; date of birth). Each incoming record takes its best spine
candidate at or above the threshold. Writes predictions CSV (every incoming record with its
best candidate and probability; ``spine_id`` only at or above the threshold) and a JSON of
timings and peak RSS.

Usage: python bench/link_splink_runner.py SPINE.csv INCOMING.csv OUT.csv TIMINGS.json
       [--threshold 0.9] [--latency N] [--stream N]
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import resource
import sys
import time

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

_PC = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})$")


def clean(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = df.fillna("").astype(str)
    out = pd.DataFrame({"unique_id": df["id"]})
    out["source_dataset"] = source
    for col in ("given_name", "surname"):
        out[col] = df[col].str.lower().str.strip().str.replace(r"[^a-z\- ]", "", regex=True)
    out["given_name"] = out["given_name"].str.split().str[0].fillna("")
    out["date_of_birth"] = df["date_of_birth"].str.strip()
    out["sex"] = df["sex"].str.upper().str.strip().where(df["sex"].str.upper().isin(["M", "F"]), "")
    pcs = df["postcode"].str.upper().str.replace(" ", "", regex=False)
    out["postcode"] = pcs.map(lambda p: (lambda m: f"{m[1]} {m[2]}" if m else p)(_PC.match(p)))
    out["address"] = df["address"].str.lower().str.strip()
    out["nhs_number"] = df["nhs_number"].str.strip()
    out = out.replace({"": None})
    return out


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.ForenameSurnameComparison("given_name", "surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
            cl.ExactMatch("nhs_number"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("date_of_birth", "substr(surname, 1, 2)"),
            block_on("date_of_birth", "substr(given_name, 1, 2)"),
            block_on("given_name", "surname"),
            block_on("postcode", "substr(date_of_birth, 1, 4)"),
            block_on("postcode", "substr(given_name, 1, 2)"),
            block_on("surname", "substr(date_of_birth, 6, 5)"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def main(argv: list[str]) -> None:
    spine_csv, incoming_csv, out_csv, timings_json = argv[:4]
    threshold = float(argv[argv.index("--threshold") + 1]) if "--threshold" in argv else 0.9
    latency_n = int(argv[argv.index("--latency") + 1]) if "--latency" in argv else 0
    logging.getLogger("splink").setLevel(logging.WARNING)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    spine = clean(pd.read_csv(spine_csv, dtype=str), "spine")
    incoming = clean(pd.read_csv(incoming_csv, dtype=str), "incoming")
    db_api = DuckDBAPI()
    left = db_api.register(spine, dataset_display_name="spine")
    right = db_api.register(incoming, dataset_display_name="incoming")
    linker = Linker([left, right], settings(), log_level=logging.WARNING)
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "surname")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    timings["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    preds = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    timings["predict_s"] = time.perf_counter() - t
    # One spine person per incoming record: the best-scoring candidate.
    if len(preds):
        l_inc = preds["source_dataset_l"] == "incoming"
        preds["incoming_id"] = preds["unique_id_l"].where(l_inc, preds["unique_id_r"])
        preds["spine_id"] = preds["unique_id_r"].where(l_inc, preds["unique_id_l"])
        preds = preds.sort_values(
            ["incoming_id", "match_probability", "spine_id"], ascending=[True, False, True]
        )
        best = preds.drop_duplicates("incoming_id")
    else:
        best = pd.DataFrame(columns=["incoming_id", "spine_id", "match_probability"])
    best = best.set_index("incoming_id")
    rows = []
    for rid in incoming["unique_id"]:
        if rid in best.index:
            p, cand = best.at[rid, "match_probability"], best.at[rid, "spine_id"]
            rows.append((rid, cand if p >= threshold else "", p, cand))
        else:
            rows.append((rid, "", 0.0, ""))
    # Every record with its best candidate, so other thresholds can be scored afterwards.
    columns = ["incoming_id", "spine_id", "match_probability", "candidate_id"]
    pd.DataFrame(rows, columns=columns).to_csv(out_csv, index=False)
    timings["total_s"] = time.perf_counter() - t0
    timings["pairs_scored"] = float(len(preds))
    if latency_n:
        # Single-record scoring: Splink's documented call for one pair, timed per call.
        recs_l = spine.head(latency_n).to_dict("records")
        recs_r = incoming.head(latency_n).to_dict("records")
        lat = []
        for a, b in zip(recs_l, recs_r, strict=False):
            t = time.perf_counter()
            linker.inference.score_pair(a, b).as_pandas_dataframe()
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        timings["score_pair_p50_ms"] = lat[len(lat) // 2]
        timings["score_pair_p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    stream_n = int(argv[argv.index("--stream") + 1]) if "--stream" in argv else 0
    if stream_n:
        # Streaming: one new record against the whole spine per call (predict_between with
        # the spine registered once), as Splink's docs describe for incremental linkage.
        for col in ("given_name", "surname", "given_name_surname_concat"):
            with contextlib.suppress(Exception):  # a column without tf is fine
                linker.table_management.compute_tf_table(col)
        lat = []
        for i, row in enumerate(incoming.head(stream_n).to_dict("records")):
            one = db_api.register(pd.DataFrame([row]), dataset_display_name=f"q{i}")
            t = time.perf_counter()
            res = linker.inference.predict_between(one, left).as_pandas_dataframe()
            if len(res):
                res.sort_values("match_probability", ascending=False).head(1)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        timings["stream_queries"] = len(lat)
        timings["stream_p50_ms"] = lat[len(lat) // 2]
        timings["stream_p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    timings["max_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with open(timings_json, "w") as fh:
        json.dump(timings, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
