"""Regenerate postcode_lookup.csv: a SYNTHETIC postcode -> LSOA / local-authority table.

The districts and local-authority codes are real; the unit postcodes and LSOA codes are made
up (deterministically, from a fixed seed) for the synthetic world of tests, demos and
benchmarks. Do not use the table for real data: load the ONS Postcode Directory instead.

    python services/pseudonymise/data/make_postcode_lookup.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

# (local authority code, name, districts)
AUTHORITIES = [
    ("W06000001", "Isle of Anglesey", ["LL77", "LL65"]),
    ("W06000002", "Gwynedd", ["LL57", "LL55"]),
    ("W06000003", "Conwy", ["LL29", "LL30"]),
    ("W06000004", "Denbighshire", ["LL18", "LL16"]),
    ("W06000005", "Flintshire", ["CH5", "CH7"]),
    ("W06000006", "Wrexham", ["LL11", "LL13"]),
    ("W06000008", "Ceredigion", ["SY23"]),
    ("W06000009", "Pembrokeshire", ["SA61", "SA73"]),
    ("W06000010", "Carmarthenshire", ["SA31", "SA15"]),
    ("W06000011", "Swansea", ["SA1", "SA5"]),
    ("W06000012", "Neath Port Talbot", ["SA11", "SA13"]),
    ("W06000013", "Bridgend", ["CF31"]),
    ("W06000014", "Vale of Glamorgan", ["CF62", "CF64"]),
    ("W06000015", "Cardiff", ["CF10", "CF11", "CF14", "CF24"]),
    ("W06000016", "Rhondda Cynon Taf", ["CF37", "CF40"]),
    ("W06000018", "Caerphilly", ["CF83"]),
    ("W06000019", "Blaenau Gwent", ["NP23"]),
    ("W06000020", "Torfaen", ["NP44"]),
    ("W06000021", "Monmouthshire", ["NP25"]),
    ("W06000022", "Newport", ["NP19", "NP20"]),
    ("W06000023", "Powys", ["LD1", "SY21"]),
    ("W06000024", "Merthyr Tydfil", ["CF47"]),
    ("E06000022", "Bath and North East Somerset", ["BA1"]),
    ("E06000023", "Bristol, City of", ["BS1", "BS5"]),
    ("E06000019", "Herefordshire, County of", ["HR1"]),
    ("E06000051", "Shropshire", ["SY1"]),
    ("E06000050", "Cheshire West and Chester", ["CH1"]),
    ("E08000025", "Birmingham", ["B5", "B10"]),
    ("E08000003", "Manchester", ["M1", "M14"]),
    ("E08000012", "Liverpool", ["L1", "L8"]),
    ("E08000035", "Leeds", ["LS1"]),
    ("E09000033", "Westminster", ["SW1P"]),
    ("E09000012", "Hackney", ["E8"]),
    ("E09000022", "Lambeth", ["SE11"]),
]
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def main() -> None:
    rng = random.Random(20240601)
    rows = []
    lsoa_counter = {"W": 1, "E": 1}
    for la, _name, districts in AUTHORITIES:
        country = la[0]
        for district in districts:
            for sector_digit in rng.sample(range(10), 3):
                # two or three LSOAs per sector, each holding a few units
                lsoas = []
                for _ in range(rng.randint(2, 3)):
                    n = lsoa_counter[country]
                    lsoa_counter[country] += rng.randint(1, 40)
                    base = 1000 if country == "W" else 10000
                    lsoas.append(f"{country}01{base + n:06d}"[:9])
                units = set()
                while len(units) < 3:
                    units.add(rng.choice(UNIT_LETTERS) + rng.choice(UNIT_LETTERS))
                for letters in sorted(units):
                    rows.append((f"{district} {sector_digit}{letters}", rng.choice(lsoas), la))
    rows.sort()
    out = Path(__file__).with_name("postcode_lookup.csv")
    with out.open("w", newline="", encoding="utf-8") as handle:
        handle.write("# SYNTHETIC postcode lookup for the fjo synthetic world; not ONS data.\n")
        handle.write("# Regenerate with services/pseudonymise/data/make_postcode_lookup.py\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["pcds", "lsoa21", "oslaua"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
