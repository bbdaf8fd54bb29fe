"""UK postcodes: normalisation, parts, and the ONS Postcode Directory lookup to LSOA and LA.

Parts of ``CF10 1AA``: unit ``CF10 1AA``, sector ``CF10 1``, district ``CF10``, area ``CF``.
:class:`OnsPostcodeLookup` maps a postcode to its LSOA and local authority from rows in ONS
Postcode Directory (ONSPD) or National Statistics Postcode Lookup (NSPL) columns: ``pcds``
(or ``pcd``/``pcd7``/``pcd8``), ``lsoa21`` (or ``lsoa11``, or the ``...cd``-suffixed names of
newer releases) and ``oslaua`` (ONSPD), ``laua`` (NSPL) or ``lad..cd``. Building it is pure;
:func:`load_ons_postcode_lookup` reads a CSV the caller names.
"""

from __future__ import annotations

import csv
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

__all__ = [
    "SYNTHETIC_MARK",
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
# ONSPD names the local authority ``oslaua``, NSPL ``laua``, newer releases ``lad..cd``.
_LA_COLUMNS = (
    "oslaua", "laua", "lad25cd", "lad24cd", "lad23cd", "lad22cd", "lad21cd", "ladcd", "lad"
)  # fmt: skip
# ONS fills a geography that does not apply with a pseudo code: the country letter and
# eight nines (W99999999, E99999999; L/M for the Channel Islands and the Isle of Man).
_PSEUDO_CODE = re.compile(r"[A-Z]9{8}")
SYNTHETIC_MARK = "SYNTHETIC"
"""A lookup whose comment lines before the header carry this word is made up (the bundled
one); pseudonymise refuses it outside dev."""

# A unit or sector as one integer: each character of the compact form (no space) a base-37
# digit (0 pads), so 7 characters fit in 37 bits and sort like the strings they stand for.
_DIGITS = {c: i + 1 for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def _code(text: str) -> int:
    n = 0
    for c in text.replace(" ", "").ljust(7, "\0")[:7]:
        n = n * 37 + _DIGITS.get(c, 0)
    return n


def _pick(row: Mapping[str, str | None], columns: tuple[str, ...]) -> str | None:
    for column in columns:
        value = row.get(column)
        if value and value.strip():
            return value.strip()
    return None


def _area_code(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if not value or _PSEUDO_CODE.fullmatch(value) else value


class OnsPostcodeLookup:
    """Postcode -> (LSOA, local authority), built from ONSPD- or NSPL-shaped rows.

    The directories hold about 2.7 million postcodes (live and terminated: a court record's
    address may be decades old, so terminated units are kept). They are held as sorted
    integer arrays, a unit's code and the indexes of its LSOA and local authority in small
    tables of distinct codes, about 14 bytes a postcode instead of the few hundred a dict of
    strings costs; a lookup is a binary search."""

    __slots__ = ("_las", "_lsoas", "_sector_codes", "_sector_la", "_unit_codes", "_unit_la",
                 "_unit_lsoa", "synthetic")  # fmt: skip

    def __init__(
        self, rows: Iterable[Mapping[str, str | None]], *, synthetic: bool = False
    ) -> None:
        self._build(
            (
                (_pick(r, _PCD_COLUMNS), _pick(r, _LSOA_COLUMNS), _pick(r, _LA_COLUMNS))
                for r in rows
            ),
            synthetic,
        )

    @classmethod
    def from_triples(
        cls, rows: Iterable[tuple[str | None, str | None, str | None]], *, synthetic: bool = False
    ) -> OnsPostcodeLookup:
        """From (postcode, LSOA, local authority) triples: the loader's path, with no dict
        made per row of a 2.7-million-row file."""
        lookup = cls.__new__(cls)
        lookup._build(rows, synthetic)
        return lookup

    def _build(
        self, rows: Iterable[tuple[str | None, str | None, str | None]], synthetic: bool
    ) -> None:
        lsoa_index: dict[str | None, int] = {None: 0}
        la_index: dict[str | None, int] = {None: 0}
        # Growing C arrays, not Python objects per postcode: the peak while a directory loads
        # stays near the size of the result.
        codes, lsoas, las, sector_codes, sector_las = (
            array("q"), array("i"), array("i"), array("q"), array("i")
        )  # fmt: skip
        for pcd, lsoa_text, la_text in rows:
            postcode = parse_postcode(pcd)
            if postcode is None or postcode.unit is None or postcode.sector is None:
                continue
            lsoa, la = _area_code(lsoa_text), _area_code(la_text)
            ai = la_index.setdefault(la, len(la_index))
            codes.append(_code(postcode.unit))
            lsoas.append(lsoa_index.setdefault(lsoa, len(lsoa_index)))
            las.append(ai)
            if la is not None:
                sector_codes.append(_code(postcode.sector))
                sector_las.append(ai)
        unit = np.frombuffer(codes, dtype=np.int64) if codes else np.zeros(0, np.int64)
        order = np.argsort(unit, kind="stable")
        unit = unit[order]
        last = np.ones(len(unit), dtype=bool)  # a unit listed twice: its last row, as a dict
        last[:-1] = unit[:-1] != unit[1:]
        keep = order[last]
        self._unit_codes = unit[last].copy()
        self._unit_lsoa = np.asarray(lsoas, dtype=np.int32)[keep]
        self._unit_la = np.asarray(las, dtype=np.int32)[keep]
        # Sectors all of whose known units lie in one local authority.
        sec = np.asarray(sector_codes, dtype=np.int64)
        sla = np.asarray(sector_las, dtype=np.int32)
        pairs = np.unique(np.stack([sec, sla.astype(np.int64)], axis=1), axis=0) if len(sec) else (
            np.zeros((0, 2), np.int64)
        )  # fmt: skip
        sectors, first, count = np.unique(pairs[:, 0], return_index=True, return_counts=True)
        single = count == 1
        self._sector_codes = sectors[single]
        self._sector_la = pairs[first[single], 1].astype(np.int32)
        self._lsoas = tuple(sorted(lsoa_index, key=lsoa_index.__getitem__))
        self._las = tuple(sorted(la_index, key=la_index.__getitem__))
        self.synthetic = synthetic

    def __len__(self) -> int:
        return len(self._unit_codes)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (the code tables are a few thousand short strings more)."""
        arrays = (self._unit_codes, self._unit_lsoa, self._unit_la, self._sector_codes,
                  self._sector_la)  # fmt: skip
        return sum(a.nbytes for a in arrays)

    @staticmethod
    def _find(codes: np.ndarray, code: int) -> int | None:
        i = int(np.searchsorted(codes, code))
        return i if i < len(codes) and int(codes[i]) == code else None

    def __contains__(self, postcode: object) -> bool:
        parsed = parse_postcode(postcode) if isinstance(postcode, str) else None
        return (
            parsed is not None
            and parsed.unit is not None
            and self._find(self._unit_codes, _code(parsed.unit)) is not None
        )

    def lookup(self, postcode: str | Postcode | None) -> AreaLookup:
        """LSOA and local authority of ``postcode``, with a quality flag."""
        if postcode is None or postcode == "":
            return AreaLookup(None, None, AreaQuality.MISSING)
        parsed = postcode if isinstance(postcode, Postcode) else parse_postcode(postcode)
        if parsed is None:
            return AreaLookup(None, None, AreaQuality.INVALID)
        if parsed.unit is not None:
            i = self._find(self._unit_codes, _code(parsed.unit))
            if i is not None:
                return AreaLookup(
                    self._lsoas[int(self._unit_lsoa[i])],
                    self._las[int(self._unit_la[i])],
                    AreaQuality.EXACT,
                )
        if parsed.sector is not None:
            j = self._find(self._sector_codes, _code(parsed.sector))
            if j is not None:
                return AreaLookup(None, self._las[int(self._sector_la[j])], AreaQuality.SECTOR)
        return AreaLookup(None, None, AreaQuality.UNKNOWN)


def load_ons_postcode_lookup(path: str | Path) -> OnsPostcodeLookup:
    """Read an ONSPD- or NSPL-shaped CSV as ONS publishes it (quoted values, a header line;
    comment lines starting with ``#`` before the header are skipped, and a comment carrying
    :data:`SYNTHETIC_MARK` marks the lookup as made up). Only the postcode, LSOA and local
    authority columns are kept."""
    synthetic = False
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        header: list[str] | None = None
        reader = csv.reader(handle)
        for line in reader:
            if line and line[0].startswith("#"):
                synthetic = synthetic or SYNTHETIC_MARK in ",".join(line)
                continue
            header = [h.strip().lower() for h in line]
            break
        if header is None:
            raise ValueError(f"{path}: no header line")
        wanted = {c for c in (*_PCD_COLUMNS, *_LSOA_COLUMNS, *_LA_COLUMNS) if c in header}
        if not wanted & set(_PCD_COLUMNS):
            raise ValueError(f"{path}: no postcode column (one of {', '.join(_PCD_COLUMNS)})")
        if not wanted & set(_LA_COLUMNS):
            raise ValueError(f"{path}: no local-authority column (one of {', '.join(_LA_COLUMNS)})")
        pcd, lsoa, la = (
            next((header.index(c) for c in columns if c in header), None)
            for columns in (_PCD_COLUMNS, _LSOA_COLUMNS, _LA_COLUMNS)
        )
        assert pcd is not None and la is not None  # checked above

        def cell(line: list[str], i: int | None) -> str | None:
            return line[i] if i is not None and i < len(line) else None

        return OnsPostcodeLookup.from_triples(
            ((cell(line, pcd), cell(line, lsoa), cell(line, la)) for line in reader),
            synthetic=synthetic,
        )
