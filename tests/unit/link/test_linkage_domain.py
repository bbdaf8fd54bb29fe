from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from services.link.domain import (
    CompiledModel,
    EncodedRecord,
    LinkageModel,
    Linker,
    SpineIndex,
    default_model,
    dice,
    estimate_u,
)
from tests.unit.link.fakes import keys, population


def build(extra: list, n: int = 600) -> Linker:
    model = default_model()
    index = SpineIndex(model)
    for rec in [*population(n), *extra]:
        index.add(rec)
    model = estimate_u(model, index, pairs=20_000)
    index.model = model
    linker = Linker(CompiledModel(model, index.schema), index)
    linker.refresh()
    return linker


def test_the_model_survives_a_json_round_trip_unchanged():
    model = default_model()
    assert LinkageModel.from_json(model.to_json()) == model


def test_dice_of_identical_encodings_is_one_and_of_disjoint_is_zero():
    assert dice((0b1011, 3), (0b1011, 3)) == 1.0
    assert dice((0b1000, 1), (0b0111, 3)) == 0.0
    assert dice(None, (1, 1)) == 0.0


def test_a_valid_nhs_token_links_with_status_1():
    person = keys("S1", "rhys", "jones", "2015-03-04", "M", "CF10 1AA", "1 heol", "1234567890")
    linker = build([person])
    rec = keys("C1", "reece", "jonse", "2015-03-04", "M", "", "", "1234567890")
    decision = linker.link(rec)
    assert (decision.spine_id, decision.status) == ("S1", 1)


def test_an_nhs_number_flagged_invalid_is_not_trusted_on_its_own():
    person = keys("S1", "rhys", "jones", "2015-03-04", "M", "CF10 1AA", "1 heol", "1234567890")
    linker = build([person])
    rec = keys("C1", "", "", "", "", "", "", "1234567890", nhs_valid=False)
    decision = linker.link(rec)
    assert decision.status != 1


def test_exact_agreement_on_the_five_core_fields_gives_status_4():
    person = keys("S1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC", "4 maes", "")
    linker = build([person])
    decision = linker.link(keys("C1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC"))
    assert (decision.spine_id, decision.status) == ("S1", 4)


def test_a_nickname_with_four_exact_fields_gives_status_39():
    person = keys("S1", "william", "pugh", "2012-06-07", "M", "SA1 2BC", "4 maes", "")
    linker = build([person])
    decision = linker.link(keys("C1", "bill", "pugh", "2012-06-07", "M", "SA1 2BC"))
    assert (decision.spine_id, decision.status) == ("S1", 39)


def test_a_day_month_swap_is_still_found_and_linked():
    person = keys("S1", "osian", "prosser", "2016-04-09", "M", "LL57 1AB", "2 ffordd", "")
    linker = build([person])
    decision = linker.link(keys("C1", "osian", "prosser", "2016-09-04", "M", "LL57 1AB"))
    assert decision.spine_id == "S1"
    assert decision.linked


def test_a_twin_who_is_not_on_the_spine_is_not_linked_to_the_twin_who_is():
    sister = keys("S1", "cerys", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed", "")
    brother = keys("S2", "tomos", "pugh", "2017-02-03", "M", "SA1 2BC", "4 maes y coed", "")
    linker = build([sister, brother])
    twin = keys("C1", "ffion", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed")
    decision = linker.link(twin)
    assert not decision.linked


def test_a_short_forename_with_a_typo_still_links_at_home_and_after_a_move():
    mia = keys("S1", "mia", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed", "")
    linker = build([mia])
    at_home = keys("C1", "mva", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed")
    moved = keys("C2", "ima", "pugh", "2019-05-17", "F", "CF10 1AA", "1 heol")
    for record in (at_home, moved):
        decision = linker.link(record)
        assert (decision.spine_id, decision.linked) == ("S1", True), record.record_id


def test_a_co_twin_with_a_name_one_letter_away_competes_for_the_record():
    mia = keys("S1", "mia", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed", "")
    tia = keys("S2", "tia", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes y coed", "")
    linker = build([mia, tia])
    decision = linker.link(keys("C1", "tia", "pugh", "2019-05-17", "F", "SA1 2BC", "4 maes"))
    assert (decision.spine_id, decision.linked) == ("S2", True)
    # A typo one letter from both twins' names is left to a reviewer.
    assert not linker.link(keys("C2", "nia", "pugh", "2019-05-17", "F", "SA1 2BC")).linked


def test_siblings_close_in_age_are_not_merged():
    older = keys("S1", "dylan", "pugh", "2018-03-10", "M", "SA1 2BC", "4 maes y coed", "")
    linker = build([older])
    younger = keys("C1", "owain", "pugh", "2019-02-10", "M", "SA1 2BC", "4 maes y coed")
    assert not linker.link(younger).linked


def test_a_maiden_surname_finds_the_married_woman_through_her_previous_surname():
    woman = keys(
        "S1",
        "sian",
        "pugh",
        "1988-10-21",
        "F",
        "NP20 1AA",
        "9 church",
        "",
        previous_surnames=("prosser",),
    )
    linker = build([woman])
    decision = linker.link(keys("C1", "sian", "prosser", "1988-10-21", "F", "NP20 1AA"))
    assert decision.spine_id == "S1"


def test_a_record_with_nothing_to_link_on_is_unlinked_with_status_97():
    linker = build([])
    assert linker.link(keys("C1", "sian", "", "", "F")).status == 97


def test_equal_competing_candidates_go_to_review_not_to_an_arbitrary_person():
    a = keys("S1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", "")
    b = keys("S2", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", "")
    linker = build([a, b])
    decision = linker.link(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC"))
    assert decision.spine_id is None
    assert decision.candidate_id == "S1"  # ties resolved by the stable id, deterministically


@pytest.mark.parametrize("rid", ["C1", "C2"])
def test_the_same_input_always_gives_the_same_decision(rid):
    person = keys("S1", "huw", "evans", "2001-11-30", "M", "CF14 3AB", "7 oak", "")
    rec = keys(rid, "huw", "evens", "2001-11-30", "M", "CF14 3AB")
    first = build([person]).link(rec)
    second = build([person]).link(rec)
    assert first == second
    assert first.spine_id == "S1"


def test_blocking_finds_a_person_whose_date_of_birth_is_missing_through_postcode_and_surname():
    person = keys("S1", "gethin", "prosser", "2010-02-03", "M", "LL57 1AB", "2 ffordd", "")
    linker = build([person])
    rec = keys("C1", "gethyn", "prosser", "", "M", "LL57 1AB")
    compact = linker.index.schema.compact(rec, linker.index.interner, grow=False)
    found = {linker.index.ids[p] for p in linker.index.candidates(compact)}
    assert "S1" in found


def test_a_replaced_spine_record_is_no_longer_a_candidate_but_its_new_version_is():
    linker = build([keys("S1", "nia", "bevan", "2011-07-08", "F", "CF5 1AA", "3 elm", "")])
    linker.index.add(keys("S1", "nia", "bevan", "2011-07-08", "F", "SA2 9ZZ", "8 oak", ""))
    decision = linker.link(keys("C1", "nia", "bevan", "2011-07-08", "F", "SA2 9ZZ"))
    assert decision.spine_id == "S1"
    assert len(linker.index) == 601


def test_the_generated_comparison_code_agrees_with_the_reference_closures():
    linker = build([])
    compiled = linker.compiled
    recs = linker.index.records
    for a in recs[:40]:
        for b in recs[::7]:
            assert compiled.vector(a, b) == [f(a, b) for f in compiled.levels]


def test_the_blocking_keys_of_one_record_equal_those_computed_on_whole_columns():
    """The streaming lookup hashes one record's keys in Python; an index of millions hashes
    whole numpy columns. Both sides of every rule must give the same integers."""
    from services.link.domain.blocking import compile_record_keys, rule_keys
    from services.link.domain.index import blocking_keys

    linker = build([])
    index = linker.index
    rules = list(enumerate(index.model.blocking_rules))
    store = index.delta
    for spine_side in (True, False):
        all_keys = compile_record_keys(rules, index.schema, spine_side=spine_side)
        by_row: dict[int, list[int]] = {}
        for n, rule in rules:
            rk = rule_keys(n, rule, index.schema, store, spine_side=spine_side)
            for key, row in zip(rk.keys.tolist(), rk.rows.tolist(), strict=True):
                by_row.setdefault(row, []).append(key)
        for row in range(200):
            rec = store.record(row)
            one_by_one = [
                k
                for n, r in rules
                for k in blocking_keys(n, r, rec, index.schema, spine_side=spine_side)
            ]
            assert [k for k, _ in all_keys(rec)] == one_by_one
            assert sorted(by_row.get(row, [])) == sorted(one_by_one)
        assert any(len(v) > 20 for v in by_row.values())  # lists and LSH bands included


def test_a_record_with_forename_and_surname_swapped_is_found_and_linked():
    person = keys("S1", "rhys", "owen", "2011-08-19", "M", "CF83 1AB", "12 heol", "")
    linker = build([person])
    decision = linker.link(keys("C1", "owen", "rhys", "2011-08-19", "M", "CF83 1AB"))
    assert (decision.spine_id, decision.linked) == ("S1", True)


def test_a_baby_under_its_mothers_nhs_number_is_not_linked_to_the_mother():
    mother = keys("S1", "ffion", "pugh", "1994-02-11", "F", "SA1 2BC", "4 maes", "4857773456")
    linker = build([mother])
    for forename in ("baby", "", "osian"):
        baby = keys("C1", forename, "pugh", "2024-11-02", "M", "SA1 2BC", "4 maes", "4857773456")
        decision = linker.link(baby)
        assert decision.status != 1 and not decision.linked, forename
    # The same number with the mother's own details is hers.
    assert (
        linker.link(keys("C2", "ffion", "pugh", "1994-02-11", "F", "", "", "4857773456")).status
        == 1
    )


def test_a_baby_without_a_birthday_under_its_mothers_number_waits_for_a_reviewer():
    mother = keys("S1", "ffion", "pugh", "1994-02-11", "F", "SA1 2BC", "4 maes", "4857773456")
    child = keys("S2", "osian", "pugh", "2024-11-02", "M", "SA1 2BC", "4 maes", "4211111115")
    linker = build([mother, child])
    # No birthday: "Baby" (no name at all), or another name and the other sex.
    for forename, sex in (("baby", "F"), ("baby", "M"), ("owain", "M")):
        baby = keys("C1", forename, "pugh", "", sex, "SA1 2BC", "4 maes", "4857773456")
        decision = linker.link(baby)
        assert decision.status != 1 and decision.spine_id != "S1", (forename, sex)
    # The child's own number with its own name needs no birthday; nor the mother's with hers.
    assert linker.link(keys("C2", "osian", "pugh", "", "M", "", "", "4211111115")).status == 1
    assert linker.link(keys("C3", "ffion", "pugh", "", "F", "", "", "4857773456")).status == 1


def test_a_model_with_one_set_of_nhs_contradictions_in_the_older_form_still_applies_it():
    linker = build([])
    det = linker.compiled.model.notes["deterministic"]
    older = {**det, "nhs_contradicted_by_else": {"dob": ["else"], "forename": ["else", "null"]}}
    model = replace(
        linker.compiled.model, notes={**linker.compiled.model.notes, "deterministic": older}
    )
    old = Linker(CompiledModel(model, linker.index.schema), linker.index)
    assert len(old.contradictions) == 1 and len(linker.contradictions) > 1
    (alternative,) = old.contradictions
    assert [linker.compiled.names[ci] for ci, _levels in alternative] == ["dob", "forename"]


def test_the_record_probability_counts_every_candidate_once():
    from services.link.domain import record_log2_odds

    # Alone, a candidate is weighed against the chance that the record is not on the spine.
    odds, alone = record_log2_odds([2.0], 0.8)
    assert odds == alone == pytest.approx(2.0 - math.log2(0.2))
    # Two equal candidates share it: neither can be accepted, whatever their own weight.
    odds, alone = record_log2_odds([30.0, 30.0], 0.8)
    assert odds < 0.0 < alone
    # A runner-up far behind does not matter.
    odds, _ = record_log2_odds([10.0, -20.0], 0.8)
    assert odds == pytest.approx(10.0 - math.log2(0.2), abs=1e-4)


@pytest.mark.parametrize("share", [0.5, 0.9])
def test_the_link_rate_estimated_from_the_records_is_near_the_true_share(share):
    from services.link.domain import estimate_link_rate
    from tests.unit.link.fakes import FORENAMES, SURNAMES

    model = default_model()
    index = SpineIndex(model)
    spine = population(900)
    for rec in spine:
        index.add(rec)
    model = estimate_u(model, index, pairs=20_000)
    index.model = model
    rng = random.Random(5)
    incoming, on_spine = [], 0
    for i in range(300):
        if rng.random() < share:  # someone on the spine, recorded again
            on_spine += 1
            p = rng.choice(spine)
            incoming.append(EncodedRecord.of(f"C{i}", p.tokens, p.blooms, p.flags))
        else:  # someone who is not
            incoming.append(
                keys(f"C{i}", rng.choice(FORENAMES), rng.choice(SURNAMES) + "x",
                     f"{rng.randint(1950, 2023)}-03-{rng.randint(1, 28):02d}", "F")
            )  # fmt: skip
    rate, log = estimate_link_rate(model, index, [index.schema.compact(r) for r in incoming])
    assert abs(rate - on_spine / len(incoming)) < 0.08, log
