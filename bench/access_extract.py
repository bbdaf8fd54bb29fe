"""Benchmark: build a project extract of N rows (default 1,000,000) from the research store.

Seeds the research store directly (children with a realistic spread of week of birth, sex and
LSOA, 80 % linked, plus their cases), then times ``build_extract``: the windowed join of
records to their current link decision, project pseudonyms for every ALF, record token and
organisation code, dates by month and banded match probabilities, k-anonymity (k = 10) on the
catalogue's quasi-identifiers and the join guard, Parquet + CSV + dictionary + manifest with
SHA-256s. Writes ``bench/results/access-extract-<stamp>.json``.

    uv run python -m bench.access_extract --rows 1000000
    uv run python -m bench.access_extract --rows 1000000 --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench._common import environment, write_result
from services.access.domain.kanonymity import KAnonymityMode
from services.access.extracts import ExtractSpec, build_extract
from services.access.storage.migrate import migrate
from services.access.storage.models import LinkDecisionRow, ResearchRecordRow
from services.runtime.db import make_engine

__all__ = ["run"]

MASTER = b"bench-only-pseudonym-master-secret-0123456789"
VARIABLES = (
    "CASE_ID_E",
    "WOB",
    "GNDR_CD",
    "LSOA_CD",
    "LA_CD_E",
    "ETHNICITY",
    "LIVING_SITUATION",
    "LAW_TYPE",
    "COURT_CD_E",
    "RECEIVED_DT",
)


def seed(url: str, children: int, *, chunk: int = 50_000, seed_value: int = 7) -> dict[str, Any]:
    """Insert ``children`` child records (+ 1 case per 20 children) and their link decisions."""
    rng = random.Random(seed_value)
    engine = make_engine(url)
    migrate(engine)
    cases = max(1, children // 20)
    lsoas = [f"W0100{i:04d}" for i in range(400)]
    las = [f"W0600{i:04d}" for i in range(22)]
    start = time.perf_counter()
    with engine.begin() as conn:
        rows = []
        for c in range(cases):
            received = date(2011, 1, 3) + timedelta(days=rng.randrange(9 * 365))
            rows.append(
                {
                    "record_token": f"case-{c:09d}",
                    "record_type": "case",
                    "source": "cafcass-cymru",
                    "record_version": 1,
                    "key_version": 1,
                    "local_authority": rng.choice(las),
                    "related_tokens": {},
                    "event_date": received,
                    "content": {
                        "law_type": rng.choice(("public", "private")),
                        "orders_sought": ["s31-care"],
                        "received_date": received.isoformat(),
                        "court": f"CRT{rng.randrange(40):02d}",
                    },
                    "flags": [],
                }
            )
        conn.execute(insert(ResearchRecordRow), rows)
    for offset in range(0, children, chunk):
        records, links = [], []
        for i in range(offset, min(children, offset + chunk)):
            token = f"child-{i:09d}"
            records.append(
                {
                    "record_token": token,
                    "record_type": "child",
                    "source": "cafcass-cymru",
                    "record_version": 1,
                    "key_version": 1,
                    "week_of_birth": date(2005, 1, 3) + timedelta(weeks=rng.randrange(14 * 52)),
                    "sex": rng.choice((1, 2)),
                    "lsoa": rng.choice(lsoas),
                    "local_authority": rng.choice(las),
                    "case_token": (case := f"case-{rng.randrange(cases):09d}"),
                    "related_tokens": {"case": case},
                    "content": {
                        "ethnicity": rng.choice(("white-british", "mixed", "asian", "black")),
                        "living_situation": rng.choice(("with-mother", "with-parents", "care")),
                    },
                    "flags": [],
                }
            )
            linked = rng.random() < 0.8
            links.append(
                {
                    "record_token": token,
                    "sequence": 1,
                    # ~10 % of people appear twice (siblings' repeat proceedings, re-entries).
                    "alf": f"alf-{rng.randrange(int(children * 0.9)):09d}" if linked else None,
                    "status_code": rng.choice((1, 4, 39)) if linked else 99,
                    "match_probability": 0.95 + rng.random() * 0.05 if linked else 0.2,
                    "model_version": "fs-bench",
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(ResearchRecordRow), records)
            conn.execute(insert(LinkDecisionRow), links)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"children": children, "cases": cases, "seed_seconds": round(seconds, 2)}


def run(rows: int, database_url: str | None, out_dir: Path | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fjo-access-bench-"))
    url = database_url or f"sqlite:///{workdir / 'access.db'}"
    try:
        seeded = seed(url, rows)
        engine = make_engine(url)
        spec = ExtractSpec(
            extract_id=str(uuid.uuid4()),
            project_id="bench-project",
            datasets=("child", "case"),
            variables=VARIABLES,
            window_start=date(2011, 1, 1),
            window_end=date(2019, 12, 31),
            k=10,
            mode=KAnonymityMode.SUPPRESS,
        )
        start = time.perf_counter()
        result = build_extract(engine, spec, master_secret=MASTER, out_dir=workdir / "extract")
        seconds = time.perf_counter() - start
        engine.dispose()
        files = result.manifest.get("files", [])
        payload = {
            "benchmark": "access-extract",
            "backend": url.split(":", 1)[0],
            "rows_requested": rows,
            "seed": seeded,
            "extract_rows": result.rows,
            "extract_seconds": round(seconds, 2),
            "rows_per_second": round(result.rows / seconds) if seconds else None,
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "files": [{k: f[k] for k in ("name", "rows", "bytes")} for f in files],
            "disclosure_control": result.disclosure,
            "environment": environment(),
        }
        payload["result_file"] = str(write_result("access-extract", payload, out_dir))
        return payload
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Child records to extract.")
    parser.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    parser.add_argument("--out", type=Path, default=None, help="Results folder.")
    args = parser.parse_args(argv)
    payload = run(args.rows, args.database_url, args.out)
    print(
        f"extract of {payload['extract_rows']} rows built in {payload['extract_seconds']} s "
        f"({payload['rows_per_second']} rows/s) on {payload['backend']}; "
        f"seeding took {payload['seed']['seed_seconds']} s -> {payload['result_file']}"
    )


if __name__ == "__main__":
    main()
