"""The postcode directory as ONS publishes it (NSPL and ONSPD layouts), its compact form, and
pseudonymise's refusal of the bundled synthetic lookup outside dev."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.pseudonymise.bootstrap import SyntheticPostcodesError, load_postcodes
from services.pseudonymise.config import DEFAULT_POSTCODE_LOOKUP, PseudonymiseSettings
from services.pseudonymise.domain import AreaQuality, load_ons_postcode_lookup
from tests.postcodes import NSPL_COLUMNS, ONSPD_COLUMNS, nspl_from_synthetic, write_directory

ROWS = [
    ("CF10 1AA", "W01001870", "W06000015", ""),
    ("CF10 1AB", "W01001871", "W06000015", ""),
    ("CF10 1ZZ", "W01001872", "W06000015", "200912"),  # terminated in 2009: still an address
    ("B1 1AA", "E01033620", "E08000025", ""),
    ("GY1 1AA", None, None, ""),  # Guernsey: pseudo codes for LSOA and local authority
]


def _settings(tmp_path: Path, environment: str, lookup: Path) -> PseudonymiseSettings:
    key = tmp_path / "master-v1.key"
    key.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    kek = tmp_path / "vault-kek-k1.key"
    kek.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    return PseudonymiseSettings(
        environment=environment,
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
        master_key_files={1: key},
        vault_kek_files={"k1": kek},
        postcode_lookup_file=lookup,
    )


@pytest.mark.parametrize("columns", [NSPL_COLUMNS, ONSPD_COLUMNS], ids=["NSPL", "ONSPD"])
def test_the_directory_is_read_in_the_layout_ons_publishes(
    tmp_path: Path, columns: list[str]
) -> None:
    path = write_directory(tmp_path / "directory.csv", ROWS, columns)
    assert path.read_text().startswith('"pcd","pcd2","pcds","dointr","doterm"')
    lookup = load_ons_postcode_lookup(path)
    assert len(lookup) == 5 and not lookup.synthetic
    hit = lookup.lookup("cf101aa")
    assert (hit.lsoa, hit.local_authority, hit.quality) == ("W01001870", "W06000015", "exact")
    old = lookup.lookup("CF10 1ZZ")
    assert old.quality is AreaQuality.EXACT and old.lsoa == "W01001872"
    # A geography that does not apply is ONS's pseudo code, never an area of its own.
    guernsey = lookup.lookup("GY1 1AA")
    assert (guernsey.lsoa, guernsey.local_authority) == (None, None)
    # A unit the directory does not hold: its sector's one local authority.
    sector = lookup.lookup("CF10 1QQ")
    assert (sector.lsoa, sector.local_authority, sector.quality) == (
        None,
        "W06000015",
        AreaQuality.SECTOR,
    )
    assert lookup.lookup("B2 9ZZ").quality is AreaQuality.UNKNOWN
    assert lookup.lookup("not a postcode").quality is AreaQuality.INVALID
    assert "B1 1AA" in lookup and "B1 1AB" not in lookup


def test_the_compact_lookup_answers_as_the_rows_say_for_every_postcode(tmp_path: Path) -> None:
    import csv

    lookup = load_ons_postcode_lookup(nspl_from_synthetic(tmp_path))
    with DEFAULT_POSTCODE_LOOKUP.open(newline="") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    assert len(lookup) == len(rows) > 400
    for r in rows:
        hit = lookup.lookup(r["pcds"])
        assert (hit.lsoa, hit.local_authority) == (r["lsoa21"], r["oslaua"]), r["pcds"]
    assert lookup.nbytes <= 28 * len(rows)  # int arrays (16 bytes a unit, 12 a sector), no dict


def test_a_file_without_a_postcode_or_local_authority_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("postcode_unit,lsoa21\nCF10 1AA,W01001870\n")
    with pytest.raises(ValueError, match="no postcode column"):
        load_ons_postcode_lookup(path)
    path.write_text("pcds,lsoa21\nCF10 1AA,W01001870\n")
    with pytest.raises(ValueError, match="no local-authority column"):
        load_ons_postcode_lookup(path)


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_outside_dev_the_bundled_synthetic_lookup_is_refused(
    tmp_path: Path, environment: str
) -> None:
    with pytest.raises(ValidationError, match="bundled lookup is synthetic"):
        _settings(tmp_path, environment, DEFAULT_POSTCODE_LOOKUP)
    # A copy under another name is refused when it is loaded: its comment marks it synthetic.
    copy = shutil.copy(DEFAULT_POSTCODE_LOOKUP, tmp_path / "ONSPD_FEB_2026_UK.csv")
    with pytest.raises(SyntheticPostcodesError, match="synthetic postcode lookup"):
        load_postcodes(_settings(tmp_path, environment, Path(copy)))


def test_outside_dev_a_directory_in_the_ons_layout_is_used(tmp_path: Path) -> None:
    path = write_directory(tmp_path / "NSPL_FEB_2026_UK.csv", ROWS)
    lookup = load_postcodes(_settings(tmp_path, "prod", path))
    assert lookup.lookup("B1 1AA").local_authority == "E08000025"


def test_in_dev_the_synthetic_lookup_is_the_default(tmp_path: Path) -> None:
    lookup = load_postcodes(_settings(tmp_path, "dev", DEFAULT_POSTCODE_LOOKUP))
    assert lookup.synthetic and len(lookup) > 400
