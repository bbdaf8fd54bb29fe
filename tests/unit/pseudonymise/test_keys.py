"""Master keys, the key ring, rotation and per-purpose derivation."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from services.pseudonymise.domain import (
    ALF,
    LINKAGE_BLOOM,
    LINKAGE_EXACT,
    RECORD_TOKEN,
    KeyMaterialError,
    KeyRing,
    MasterKey,
    OnsPostcodeLookup,
    Pseudonymiser,
    RetiredKeyVersionError,
    UnknownKeyVersionError,
    project_purpose,
)
from services.pseudonymise.domain.keys import validate_purpose
from tests.unit.pseudonymise.conftest import fixed_key

RANDOM_32 = hashlib.sha256(b"key file material").digest()


def test_a_key_file_in_hex_base64_or_raw_bytes_loads_to_the_same_key(tmp_path: Path) -> None:
    (tmp_path / "hex").write_text(RANDOM_32.hex() + "\n")
    (tmp_path / "b64").write_text(base64.b64encode(RANDOM_32).decode() + "\n")
    (tmp_path / "b64url").write_text(base64.urlsafe_b64encode(RANDOM_32).decode().rstrip("="))
    (tmp_path / "raw").write_bytes(RANDOM_32)
    keys = {MasterKey.from_file(tmp_path / name) for name in ("hex", "b64", "b64url", "raw")}
    assert keys == {MasterKey(RANDOM_32)}


@pytest.mark.parametrize(
    "text",
    [
        RANDOM_32[:31].hex(),  # 31 bytes: too short
        "changeme-changeme-changeme-changeme",  # a passphrase, not hex or base64
        "0" * 64,  # hex of all-zero bytes
        base64.b64encode(b"placeholder-secret-for-dev-only!!").decode(),
        bytes(range(32)).hex(),  # an arithmetic sequence
        (b"abcd" * 8).hex(),  # a short repeating pattern
        "",
    ],
)
def test_short_or_placeholder_key_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "key"
    path.write_text(text)
    with pytest.raises(KeyMaterialError):
        MasterKey.from_file(path)


def test_a_master_key_never_shows_its_material_in_repr() -> None:
    key = MasterKey(RANDOM_32)
    assert RANDOM_32.hex() not in repr(key)
    assert repr(RANDOM_32) not in repr(key)
    derived = key.derive(LINKAGE_EXACT, 1)
    assert derived.material.hex() not in repr(derived)
    assert repr(derived.material) not in repr(derived)


def test_every_purpose_derives_a_different_key() -> None:
    key = fixed_key("purposes")
    purposes = [RECORD_TOKEN, LINKAGE_EXACT, LINKAGE_BLOOM, ALF, project_purpose("P0042")]
    materials = {key.derive(p, 1).material for p in [*purposes, project_purpose("P0043")]}
    assert len(materials) == len(purposes) + 1


def test_derivation_is_deterministic_and_carries_its_version() -> None:
    key = fixed_key("determinism")
    first, second = key.derive(ALF, 3), key.derive(ALF, 3)
    assert first.material == second.material
    assert (first.purpose, first.version) == (ALF, 3)


def test_unknown_purposes_are_refused() -> None:
    with pytest.raises(ValueError):
        validate_purpose("linkage")
    with pytest.raises(ValueError):
        project_purpose("has spaces")


def test_adding_a_version_makes_it_current_and_keeps_the_old_one_derivable() -> None:
    v1, v2 = fixed_key("v1"), fixed_key("v2")
    ring = KeyRing.single(v1).add(2, v2)
    assert ring.current_version == 2
    assert ring.derive(LINKAGE_EXACT).version == 2
    assert ring.derive(LINKAGE_EXACT, 1).material == v1.derive(LINKAGE_EXACT, 1).material
    assert ring.derive(LINKAGE_EXACT, 1).material != ring.derive(LINKAGE_EXACT, 2).material


def test_tokens_made_under_v1_and_v2_differ_and_say_which_version_made_them(
    postcodes: OnsPostcodeLookup,
) -> None:
    ring = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2"))
    old, new = Pseudonymiser(ring, postcodes, version=1), Pseudonymiser(ring, postcodes)
    assert (old.key_version, new.key_version) == (1, 2)
    assert old.token("surname", "evans") != new.token("surname", "evans")
    # A rotation re-keys linkage, never a record's name (link's ALFs and access's store
    # are keyed by it): record tokens stay under the ring's first version.
    assert old.record_token("cafcass-cymru", "child", "C1") == new.record_token(
        "cafcass-cymru", "child", "C1"
    )
    other_names = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2"))
    renamed = KeyRing(other_names.keys, current_version=2, record_token_version=2)
    assert Pseudonymiser(renamed, postcodes).record_token(
        "cafcass-cymru", "child", "C1"
    ) != new.record_token("cafcass-cymru", "child", "C1")
    record = {"id": "C1", "surname": "Evans"}
    roles = {"id": "record_id", "surname": "surname"}
    split_v1 = old.split(record, source="s", record_kind="child", roles=roles)
    assert split_v1.content["key_version"] == split_v1.key_version == 1


def test_a_retired_version_is_refused(postcodes: OnsPostcodeLookup) -> None:
    ring = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2")).add(3, fixed_key("v3"))
    ring = ring.retire(2)
    assert ring.versions == (1, 3)
    with pytest.raises(RetiredKeyVersionError):
        ring.derive(LINKAGE_EXACT, 2)
    with pytest.raises(RetiredKeyVersionError):
        Pseudonymiser(ring, postcodes, version=2)
    with pytest.raises(ValueError):
        ring.add(2, fixed_key("v2 again"))


def test_the_record_token_version_is_never_retired() -> None:
    ring = KeyRing.single(fixed_key("v1")).add(2, fixed_key("v2"))
    assert ring.record_token_version == 1
    with pytest.raises(ValueError, match="record tokens"):
        ring.retire(1)
    # A ring whose first version's file is gone (retired) cannot name records: refused.
    with pytest.raises(RetiredKeyVersionError):
        KeyRing({2: fixed_key("v2")}, current_version=2, retired=frozenset({1}))


def test_the_current_version_cannot_be_retired_and_unknown_versions_are_refused() -> None:
    ring = KeyRing.single(fixed_key("v1"))
    with pytest.raises(ValueError):
        ring.retire(1)
    with pytest.raises(UnknownKeyVersionError):
        ring.derive(ALF, 7)


def test_a_ring_refuses_the_same_master_key_under_two_versions() -> None:
    with pytest.raises(KeyMaterialError):
        KeyRing.single(fixed_key("same")).add(2, fixed_key("same"))


def test_new_versions_must_be_higher_than_every_earlier_one() -> None:
    ring = KeyRing.single(fixed_key("v5"), version=5)
    with pytest.raises(ValueError):
        ring.add(4, fixed_key("v4"))


def test_a_ring_loads_from_one_file_per_version(tmp_path: Path) -> None:
    for version in (1, 2):
        (tmp_path / f"v{version}").write_text(fixed_key(f"file {version}").material.hex())
    ring = KeyRing.from_files({1: tmp_path / "v1", 2: tmp_path / "v2"}, current_version=2)
    assert ring.current_version == 2
    assert ring.master(1) == fixed_key("file 1")
