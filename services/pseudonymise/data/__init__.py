"""Data shipped with pseudonymise: the synthetic postcode lookup for the synthetic world."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SYNTHETIC_POSTCODE_LOOKUP"]

SYNTHETIC_POSTCODE_LOOKUP = Path(__file__).with_name("postcode_lookup.csv")
"""ONSPD-shaped CSV (pcds, lsoa21, oslaua) of made-up units in real districts; not ONS data."""
