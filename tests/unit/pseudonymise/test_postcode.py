"""Postcode normalisation, parts and the ONS directory lookup."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.pseudonymise.data import SYNTHETIC_POSTCODE_LOOKUP
from services.pseudonymise.domain import (
    AreaQuality,
    OnsPostcodeLookup,
    load_ons_postcode_lookup,
    parse_postcode,
)


@pytest.mark.parametrize("text", ["CF10 1AA", "cf101aa", " CF10  1AA ", "Cf10 1aA", "CF10 IAA"])
def test_postcodes_normalise_to_one_spaced_upper_case_unit(text: str) -> None:
    postcode = parse_postcode(text)
    assert postcode is not None
    assert postcode.unit == "CF10 1AA"
    assert postcode.sector == "CF10 1"
    assert postcode.district == "CF10"
    assert postcode.area == "CF"


@pytest.mark.parametrize(
    ("text", "district", "area"),
    [("SW1A 1AA", "SW1A", "SW"), ("B5 4TR", "B5", "B"), ("EC1A 1BB", "EC1A", "EC"),
     ("M14 5RX", "M14", "M")],
)  # fmt: skip
def test_every_outward_code_shape_splits_into_district_and_area(
    text: str, district: str, area: str
) -> None:
    postcode = parse_postcode(text)
    assert postcode is not None
    assert (postcode.district, postcode.area, postcode.unit) == (district, area, text)


def test_an_outward_code_alone_is_a_partial_postcode() -> None:
    postcode = parse_postcode("np20")
    assert postcode is not None
    assert (postcode.district, postcode.sector, postcode.unit) == ("NP20", None, None)
    assert not postcode.is_full


@pytest.mark.parametrize("text", ["", None, "not a postcode", "12345", "CF10 1A", "QQQ"])
def test_non_postcodes_do_not_parse(text: str | None) -> None:
    assert parse_postcode(text) is None


ROWS = [
    {"pcds": "CF10 1AA", "lsoa21": "W01001234", "oslaua": "W06000015"},
    {"pcds": "CF10 1AB", "lsoa11": "W01001235", "oslaua": "W06000015"},
    {"pcd": "NP201AA", "lsoa21cd": "W01001500", "lad23cd": "W06000022"},
]


def test_the_lookup_gives_lsoa_and_local_authority_for_known_postcodes() -> None:
    lookup = OnsPostcodeLookup(ROWS)
    area = lookup.lookup("cf10 1aa")
    assert (area.lsoa, area.local_authority, area.quality) == (
        "W01001234", "W06000015", AreaQuality.EXACT,
    )  # fmt: skip
    assert lookup.lookup("CF10 1AB").lsoa == "W01001235"  # lsoa11 when lsoa21 is absent
    assert lookup.lookup("NP20 1AA").local_authority == "W06000022"
    assert len(lookup) == 3
    assert "CF101AA" in lookup


def test_unknown_units_get_a_quality_flag_and_the_sector_local_authority_when_unambiguous() -> None:
    lookup = OnsPostcodeLookup(ROWS)
    sector_only = lookup.lookup("CF10 1ZZ")
    assert (sector_only.lsoa, sector_only.local_authority) == (None, "W06000015")
    assert sector_only.quality is AreaQuality.SECTOR
    assert lookup.lookup("LL57 2DG").quality is AreaQuality.UNKNOWN
    assert lookup.lookup("garbage").quality is AreaQuality.INVALID
    assert lookup.lookup(None).quality is AreaQuality.MISSING


def test_the_loader_reads_a_csv_and_skips_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "onspd.csv"
    path.write_text("# synthetic\npcds,lsoa21,oslaua\nSA1 1AA,W01000900,W06000011\n")
    assert load_ons_postcode_lookup(path).lookup("SA1 1AA").lsoa == "W01000900"


def test_the_shipped_synthetic_lookup_is_marked_synthetic_and_covers_wales_and_england(
    postcodes: OnsPostcodeLookup,
) -> None:
    text = SYNTHETIC_POSTCODE_LOOKUP.read_text()
    assert text.startswith("# SYNTHETIC")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert len(rows) >= 300 and len(postcodes) == len(rows)
    assert {row["oslaua"][:3] for row in rows} == {"W06", "E06", "E08", "E09"}
    for row in rows:
        area = postcodes.lookup(row["pcds"])
        assert area.quality is AreaQuality.EXACT
        assert area.lsoa == row["lsoa21"]
        assert row["lsoa21"][:3] in ("W01", "E01")
