"""Postcode directories in the layouts ONS publishes, for tests that run pseudonymise outside
dev (where the bundled synthetic lookup is refused): the synthetic world's postcodes written
out as an NSPL file, with every column of the real one, as an operator would mount it."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from services.pseudonymise.config import DEFAULT_POSTCODE_LOOKUP

__all__ = ["NSPL_COLUMNS", "ONSPD_COLUMNS", "nspl_from_synthetic", "write_directory"]

NSPL_COLUMNS = [
    "pcd",
    "pcd2",
    "pcds",
    "dointr",
    "doterm",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oa21",
    "cty",
    "ced",
    "laua",
    "ward",
    "nhser",
    "ctry",
    "rgn",
    "pcon",
    "ttwa",
    "itl",
    "park",
    "lsoa21",
    "msoa21",
    "wz11",
    "sicbl",
    "bua24",
    "ruc21",
    "oac11",
    "lat",
    "long",
    "lep1",
    "lep2",
    "pfa",
    "imd",
    "icb",
]
"""The National Statistics Postcode Lookup's header (2021 geographies, 2025 releases)."""

ONSPD_COLUMNS = [
    "pcd",
    "pcd2",
    "pcds",
    "dointr",
    "doterm",
    "oscty",
    "ced",
    "oslaua",
    "osward",
    "parish",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oshlthau",
    "nhser",
    "ctry",
    "rgn",
    "streg",
    "pcon",
    "eer",
    "teclec",
    "ttwa",
    "pct",
    "itl",
    "statsward",
    "oa01",
    "casward",
    "park",
    "lsoa01",
    "msoa01",
    "ur01ind",
    "oac01",
    "oa11",
    "lsoa11",
    "msoa11",
    "wz11",
    "sicbl",
    "bua11",
    "buasd11",
    "ru11ind",
    "oac11",
    "lat",
    "long",
    "lep1",
    "lep2",
    "pfa",
    "imd",
    "calncv",
    "icb",
    "oa21",
    "lsoa21",
    "msoa21",
]
"""The ONS Postcode Directory's header (releases from 2023)."""


def write_directory(
    path: Path,
    rows: Iterable[tuple[str, str | None, str | None, str]],
    columns: list[str] = NSPL_COLUMNS,
) -> Path:
    """``rows`` of (pcds, LSOA, local authority, doterm) as ONS writes them: every value
    quoted, ``pcd`` in 7 characters and ``pcd2`` in 8, pseudo codes (country letter and eight
    nines) where a geography does not apply, and plausible filler in the other columns."""
    la_column = "oslaua" if "oslaua" in columns else "laua"
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        out.writerow(columns)
        for pcds, lsoa, la, doterm in rows:
            outward, inward = pcds.split(" ")
            country = (la or lsoa or "E")[0]
            pseudo = f"{country}99999999"
            value = {c: pseudo for c in columns}
            value |= {
                "pcd": f"{outward:<4}{inward}",
                "pcd2": f"{outward:<5}{inward}",
                "pcds": pcds,
                "dointr": "198001",
                "doterm": doterm,
                "usertype": "0",
                "oseast1m": "318000",
                "osnrth1m": "176000",
                "osgrdind": "1",
                "ctry": "W92000004" if country == "W" else "E92000001",
                "lat": "51.481000",
                "long": "-3.179000",
                la_column: la or pseudo,
                "lsoa21": lsoa or pseudo,
                "lsoa11": lsoa or pseudo,
            }
            out.writerow([value[c] for c in columns])
    return path


def nspl_from_synthetic(directory: Path) -> Path:
    """The bundled synthetic lookup's postcodes as an NSPL file under ``directory`` (no
    synthetic mark: it stands for the directory an operator mounts)."""
    with DEFAULT_POSTCODE_LOOKUP.open(newline="", encoding="utf-8") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        rows = [(r["pcds"], r["lsoa21"], r["oslaua"], "") for r in csv.DictReader(lines)]
    directory.mkdir(parents=True, exist_ok=True)
    return write_directory(directory / "NSPL_TEST_UK.csv", rows)
