"""The synthetic family-court world: deterministic, valid where meant, invalid for its reasons."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.records import RECORD_MODELS, RecordType
from synth.world import FEEDS, World, WorldConfig, build_world, load_postcode_lookup, write_world

SMALL = WorldConfig(spine_size=400, cases=24)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SMALL)


def _dump(world: World) -> str:
    return json.dumps(
        [
            {f"{s}/{k}": rows for (s, k), rows in world.records.items()},
            [vars(i) for i in world.invalid],
            [vars(t) for t in world.truth],
        ],
        sort_keys=True,
    )


def test_the_same_seed_gives_the_same_world_and_another_seed_another(world: World) -> None:
    assert _dump(build_world(SMALL)) == _dump(world)
    other = build_world(WorldConfig(seed=7, spine_size=400, cases=24))
    assert _dump(other) != _dump(world)


def test_every_feed_has_records_and_every_valid_line_passes_its_contract(world: World) -> None:
    assert set(world.records) == set(FEEDS)
    for (source, kind), rows in world.records.items():
        assert rows, f"{source}/{kind} is empty"
        model = RECORD_MODELS[RecordType(kind)]
        for row in rows:
            record = model.model_validate(row)
            assert record.source.value == source


def test_every_invalid_line_fails_for_the_reason_it_states(world: World) -> None:
    per_feed = Counter((i.source, i.record_type) for i in world.invalid)
    assert all(per_feed[feed] == SMALL.invalid_per_feed for feed in FEEDS)
    for line in world.invalid:
        try:
            row = json.loads(line.line)
        except ValueError:
            assert line.error_type == "json_invalid"
            continue
        with pytest.raises(ValidationError) as caught:
            RECORD_MODELS[RecordType(line.record_type)].model_validate(row)
        types = {e["type"] for e in caught.value.errors()}
        assert line.error_type in types, (line.reason, types)


def test_the_truth_covers_every_person_record_and_only_those(world: World) -> None:
    persons = {
        (s, k, r["record_id"])
        for (s, k), rows in world.records.items()
        if k in ("spine-person", "child", "adult-party")
        for r in rows
    }
    truth = {(t.source, t.record_type, t.record_id): t for t in world.truth}
    assert set(truth) == persons
    spine_ids = {r["record_id"] for r in world.records[("wds", "spine-person")]}
    for t in truth.values():
        assert t.spine_id == "" or t.spine_id in spine_ids
        if t.record_type == "spine-person":
            assert t.spine_id == t.record_id
    incoming = [t for t in truth.values() if t.record_type != "spine-person"]
    off_spine = sum(1 for t in incoming if not t.spine_id)
    assert 0 < off_spine < len(incoming) / 2  # some people in court are not on the spine


def test_the_world_is_a_family_court_world(world: World) -> None:
    cases = [r for s in ("cafcass-cymru", "cafcass-england") for r in world.records[(s, "case")]]
    assert {c["law_type"] for c in cases} == {"public", "private"}
    children = {
        r["record_id"]: r for s in ("cafcass-cymru", "cafcass-england")
        for r in world.records[(s, "child")]
    }  # fmt: skip
    for (source, kind), rows in world.records.items():
        if kind in ("child", "adult-party", "hearing", "party-child-relationship"):
            case_ids = {c["record_id"] for c in world.records[(source, "case")]}
            assert all(r["case_id"] in case_ids for r in rows)
        if kind == "party-child-relationship":
            adults = {a["record_id"] for a in world.records[(source, "adult-party")]}
            assert all(r["adult_record_id"] in adults for r in rows)
            assert all(r["child_record_id"] in children for r in rows)
    # Families come back to court: one true person appears in several child records.
    people = Counter(t.person_id for t in world.truth if t.record_type == "child")
    assert max(people.values()) > 1


def test_every_spine_postcode_comes_from_the_shipped_lookup(world: World) -> None:
    lookup = load_postcode_lookup()
    postcodes = [
        period["address"]["postcode"]
        for row in world.records[("wds", "spine-person")]
        for period in row["address_history"]
    ]
    assert postcodes and all(p in lookup for p in postcodes)
    sources = {s for s in ("cafcass-cymru", "cafcass-england") for _ in world.records[(s, "case")]}
    assert sources == {"cafcass-cymru", "cafcass-england"}
    for s in ("cafcass-cymru", "cafcass-england"):
        for case in world.records[(s, "case")]:
            assert case["local_authority_code"].startswith("W" if s == "cafcass-cymru" else "E")


def test_write_world_writes_ndjson_per_feed_the_truth_and_the_invalid_index(
    world: World, tmp_path: Path
) -> None:
    files = write_world(world, tmp_path)
    for (source, kind), rows in world.records.items():
        lines = files[f"{source}/{kind}"].read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(rows) + SMALL.invalid_per_feed
        assert json.loads(lines[0]) == rows[0]
    with (tmp_path / "truth.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(world.truth)
    index = json.loads((tmp_path / "invalid.json").read_text())
    assert len(index) == len(world.invalid)
    for entry in index:
        line = (
            (tmp_path / entry["file"])
            .read_text(encoding="utf-8")
            .splitlines()[entry["line_no"] - 1]
        )
        assert line == entry["line"]
