"""The synthetic population is built like the real task, and says which subset each record is in."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from synth.population import (
    NOT_ON_SPINE_KINDS,
    REFERENCE_DATE,
    SUBSETS,
    SynthConfig,
    SynthData,
    generate,
    subset_counts,
)

CONFIG = SynthConfig(seed=41, spine_size=12_000, incoming_size=3_000)


@pytest.fixture(scope="module")
def data() -> SynthData:
    return generate(CONFIG)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(data: SynthData) -> None:
    again = generate(CONFIG)
    assert again.spine == data.spine and again.incoming == data.incoming
    assert again.truth == data.truth and again.subsets == data.subsets
    other = generate(SynthConfig(seed=42, spine_size=12_000, incoming_size=3_000))
    assert other.incoming != data.incoming


def test_the_spine_has_the_size_asked_for_and_every_true_link_points_into_it(
    data: SynthData,
) -> None:
    assert len(data.spine) == CONFIG.spine_size
    ids = {r["id"] for r in data.spine}
    assert len(ids) == len(data.spine)
    linked = [v for v in data.truth.values() if v]
    assert set(linked) <= ids
    # About a fifth of the court's people are not on the spine (Cafcass Cymru links ~80 %).
    assert 0.15 < 1 - len(linked) / len(data.truth) < 0.25


def test_seventy_percent_of_incoming_records_have_no_nhs_number(data: SynthData) -> None:
    without = sum(1 for r in data.incoming if not r["nhs_number"])
    assert 0.66 < without / len(data.incoming) < 0.74
    assert subset_counts(data)["no_nhs"] == without


def test_a_quarter_of_families_moved_and_the_spine_or_the_court_may_hold_the_old_address(
    data: SynthData,
) -> None:
    households: dict[int, bool] = {}
    for p in data.people:
        households[p.household] = p.moved
    assert 0.2 < sum(households.values()) / len(households) < 0.3
    movers = [p for p in data.people if p.moved and len(p.addresses) > 1 and p.on_spine]
    assert movers
    counts = subset_counts(data)
    assert counts["moved"] > 0 and counts["address_differs"] > 0


def test_people_not_on_the_spine_have_one_kind_and_most_live_in_spine_households(
    data: SynthData,
) -> None:
    off = [p for p in data.people if not p.on_spine]
    assert off and all(p.off_spine in NOT_ON_SPINE_KINDS for p in off)
    assert all(p.on_spine == (p.off_spine == "") for p in data.people)
    on_households = {p.household for p in data.people if p.on_spine}
    for kind in ("unregistered_newborn", "relatives_child", "new_partner"):
        of_kind = [p for p in off if p.off_spine == kind]
        assert of_kind, kind
        # Hard negatives: they share the home (and often the surname) of people on the spine.
        inside = sum(1 for p in of_kind if p.household in on_households)
        assert inside / len(of_kind) > 0.9, kind
    newborns = [p for p in off if p.off_spine == "unregistered_newborn"]
    assert all(p.role == "child" and (REFERENCE_DATE - p.dob).days < 366 for p in newborns)


def test_every_incoming_record_is_tagged_with_known_subsets_and_off_spine_with_its_kind(
    data: SynthData,
) -> None:
    assert set(data.subsets) == set(data.truth)
    for rid, tags in data.subsets.items():
        assert set(tags) <= set(SUBSETS), tags
        on = "on_spine" in tags
        assert on == bool(data.truth[rid]) and on != ("not_on_spine" in tags)
        kinds = [t for t in tags if t.startswith("not_on_spine:")]
        assert len(kinds) == (0 if on else 1)
    counts = subset_counts(data)
    missing = [t for t in SUBSETS if counts[t] == 0]
    assert not missing, f"no record in subsets {missing}"


def test_twins_share_mother_birthday_home_and_sometimes_an_initial(data: SynthData) -> None:
    people = data.people
    twins = [p for p in people if p.twin is not None]
    assert twins
    for p in twins:
        q = people[p.twin]  # type: ignore[index]
        assert q.twin == p.pid and q.dob == p.dob and q.mother == p.mother
        assert q.household == p.household and q.on_spine == p.on_spine
    alike = sum(1 for p in twins if people[p.twin].forenames[0][0] == p.forenames[0][0])  # type: ignore[index]
    assert alike / len(twins) > 0.3


def test_damage_tags_describe_what_was_done_to_the_record(data: SynthData) -> None:
    spine = {r["id"]: r for r in data.spine}
    by_tag: dict[str, list[str]] = defaultdict(list)
    for rid, tags in data.subsets.items():
        for t in tags:
            by_tag[t].append(rid)
    incoming = {r["id"]: r for r in data.incoming}
    for rid in by_tag["placeholder_dob"]:
        assert incoming[rid]["date_of_birth"].endswith("-01-01")
    for rid in by_tag["dob_missing"]:
        assert incoming[rid]["date_of_birth"] == ""
    for rid in by_tag["baby_name"]:
        assert incoming[rid]["given_name"].lower().startswith("baby")
    for rid in by_tag["maiden_married"]:
        ours, theirs = incoming[rid]["surname"].lower(), spine[data.truth[rid]]["surname"].lower()
        assert ours != theirs
    surnames = Counter(r["surname"] for r in data.spine)
    assert surnames.most_common(1)[0][0] == "Jones"  # Welsh surnames are few and common
