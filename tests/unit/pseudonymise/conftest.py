"""Fixtures for the pseudonymise domain tests: fixed keys, the synthetic postcode lookup."""

from __future__ import annotations

import hashlib

import pytest

from services.pseudonymise.data import SYNTHETIC_POSTCODE_LOOKUP
from services.pseudonymise.domain import (
    KeyRing,
    MasterKey,
    OnsPostcodeLookup,
    Pseudonymiser,
    load_ons_postcode_lookup,
)


def fixed_key(label: str) -> MasterKey:
    """A deterministic, random-looking test key (never a real one)."""
    return MasterKey(hashlib.sha256(f"fjo unit-test master key {label}".encode()).digest())


@pytest.fixture(scope="session")
def key_a() -> MasterKey:
    return fixed_key("A")


@pytest.fixture(scope="session")
def key_b() -> MasterKey:
    return fixed_key("B")


@pytest.fixture(scope="session")
def ring(key_a: MasterKey) -> KeyRing:
    return KeyRing.single(key_a)


@pytest.fixture(scope="session")
def postcodes() -> OnsPostcodeLookup:
    return load_ons_postcode_lookup(SYNTHETIC_POSTCODE_LOOKUP)


@pytest.fixture(scope="session")
def pseudonymiser(ring: KeyRing, postcodes: OnsPostcodeLookup) -> Pseudonymiser:
    return Pseudonymiser(ring, postcodes)
