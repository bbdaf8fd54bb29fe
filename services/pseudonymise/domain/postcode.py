"""UK postcodes: normalisation, parts, and the ONS Postcode Directory lookup to LSOA and LA.

Parts of ``CF10 1AA``: unit ``CF10 1AA``, sector ``CF10 1``, district ``CF10``, area ``CF``.
:class:`OnsPostcodeLookup` maps a postcode to its LSOA and local authority from rows in ONS
Postcode Directory (ONSPD) columns: ``pcds`` (or ``pcd``/``pcd7``/``pcd8``), ``lsoa21``
(or ``lsoa11``, or the ``...cd``-suffixed names of newer releases) and ``oslaua`` (or
``lad..cd``). Building it is pure; :func:`load_ons_postcode_lookup` reads a CSV the caller
names.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "AreaLookup",
    "AreaQuality",
    "OnsPostcodeLookup",
    "Postcode",
    "load_ons_postcode_lookup",
    "parse_postcode",
]

# Outward code: area letters, district digit(s)/letter; inward: sector digit + unit letters.
_FULL = re.compile(r"([A-Z]{1,2})([0-9][A-Z0-9]?) ?([0-9])([A-Z]{2})")
_OUTWARD = re.compile(r"([A-Z]{1,2})([0-9][A-Z0-9]?)")
_SPACES = re.compile(r"\s+")
# Letters never used in the inward unit (C, I, K, M, O, V) are often O/0, I/1 confusions.
_INWARD_FIX = str.maketrans({"O": "0", "I": "1"})


@dataclass(frozen=True, slots=True)
class Postcode:
    """A postcode taken apart; ``unit`` and ``sector`` are None for an outward code alone."""

    area: str
    district: str
    sector: str | None
    unit: str | None

    @property
    def is_full(self) -> bool:
        return self.unit is not None


def parse_postcode(text: str | None) -> Postcode | None:
    """Normalise (upper case, single space before the inward code) and split; None if invalid.

    Accepts a full postcode in any spacing and case, or an outward code (district) alone.
    A digit-for-letter slip in the inward sector digit (``CF10 IAA``) is corrected.
    """
    if not text:
        return None
    compact = _SPACES.sub("", text.upper())
    if len(compact) >= 5:
        inward = compact[-3:]
        compact = compact[:-3] + inward[0].translate(_INWARD_FIX) + inward[1:]
        m = _FULL.fullmatch(compact)
        if m:
            area, district_tail, sector_digit, unit_letters = m.groups()
            district = area + district_tail
            sector = f"{district} {sector_digit}"
            return Postcode(area=area, district=district, sector=sector, unit=sector + unit_letters)
    m = _OUTWARD.fullmatch(compact)
    if m:
        return Postcode(area=m[1], district=compact, sector=None, unit=None)
    return None


class AreaQuality(StrEnum):
    """How an area was found for a postcode."""

    EXACT = "exact"  # the unit is in the directory
    SECTOR = "sector"  # unit unknown; every known unit of its sector is in one local authority
    UNKNOWN = "unknown"  # a well-formed postcode the directory does not hold
    INVALID = "invalid"  # not a postcode
    MISSING = "missing"  # no postcode given


@dataclass(frozen=True, slots=True)
class AreaLookup:
    """Result of a lookup: LSOA and local-authority codes (either may be None) and quality."""

    lsoa: str | None
    local_authority: str | None
    quality: AreaQuality


_PCD_COLUMNS = ("pcds", "pcd", "pcd7", "pcd8", "postcode")
_LSOA_COLUMNS = ("lsoa21", "lsoa21cd", "lsoa11", "lsoa11cd", "lsoa")
_LA_COLUMNS = ("oslaua", "lad25cd", "lad24cd", "lad23cd", "lad22cd", "lad21cd", "ladcd", "lad")


def _pick(row: Mapping[str, str | None], columns: tuple[str, ...]) -> str | None:
    for column in columns:
        value = row.get(column)
        if value and value.strip():
            return value.strip()
    return None


class OnsPostcodeLookup:
    """Postcode -> (LSOA, local authority), built from ONSPD-shaped rows."""

    __slots__ = ("_sector_la", "_units")

    def __init__(self, rows: Iterable[Mapping[str, str | None]]) -> None:
        units: dict[str, tuple[str | None, str | None]] = {}
        sector_las: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            postcode = parse_postcode(_pick(row, _PCD_COLUMNS))
            if postcode is None or postcode.unit is None:
                continue
            lsoa, la = _pick(row, _LSOA_COLUMNS), _pick(row, _LA_COLUMNS)
            units[postcode.unit] = (lsoa, la)
            if la and postcode.sector:
                sector_las[postcode.sector].add(la)
        self._units = units
        self._sector_la = {s: next(iter(las)) for s, las in sector_las.items() if len(las) == 1}

    def __len__(self) -> int:
        return len(self._units)

    def __contains__(self, postcode: object) -> bool:
        parsed = parse_postcode(postcode) if isinstance(postcode, str) else None
        return parsed is not None and parsed.unit in self._units

    def lookup(self, postcode: str | Postcode | None) -> AreaLookup:
        """LSOA and local authority of ``postcode``, with a quality flag."""
        if postcode is None or postcode == "":
            return AreaLookup(None, None, AreaQuality.MISSING)
        parsed = postcode if isinstance(postcode, Postcode) else parse_postcode(postcode)
        if parsed is None:
            return AreaLookup(None, None, AreaQuality.INVALID)
        if parsed.unit is not None and parsed.unit in self._units:
            lsoa, la = self._units[parsed.unit]
            return AreaLookup(lsoa, la, AreaQuality.EXACT)
        if parsed.sector is not None and parsed.sector in self._sector_la:
            return AreaLookup(None, self._sector_la[parsed.sector], AreaQuality.SECTOR)
        return AreaLookup(None, None, AreaQuality.UNKNOWN)


def load_ons_postcode_lookup(path: str | Path) -> OnsPostcodeLookup:
    """Read an ONSPD-shaped CSV (lines starting with ``#`` before the header are skipped)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        return OnsPostcodeLookup(csv.DictReader(lines))
