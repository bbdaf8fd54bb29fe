"""Hardened Bloom-filter encodings: similarity, determinism, and separation across keys."""

from __future__ import annotations

import random
import statistics

import pytest

from services.pseudonymise.domain import (
    DEFAULT_BLOOM_PARAMS,
    LINKAGE_BLOOM,
    LINKAGE_EXACT,
    BloomEncoder,
    BloomParams,
    bigrams,
    dice,
    from_b64,
    normalise_name,
    to_b64,
)
from services.pseudonymise.domain.nicknames import FORENAME_VARIANTS
from tests.unit.pseudonymise.conftest import fixed_key

NAMES = sorted(name for name in FORENAME_VARIANTS if len(name) >= 4)


def encoder(label: str, params: BloomParams = DEFAULT_BLOOM_PARAMS) -> BloomEncoder:
    return BloomEncoder(fixed_key(label).derive(LINKAGE_BLOOM, 1), params)


def encode(enc: BloomEncoder, name: str, field: str = "surname") -> int:
    bits = enc.encode_tokens(field, normalise_name(name).forms)
    assert bits is not None
    return bits


@pytest.fixture(scope="module")
def enc_a() -> BloomEncoder:
    return encoder("bloom A")


@pytest.fixture(scope="module")
def enc_b() -> BloomEncoder:
    return encoder("bloom B")


def test_bigrams_are_padded() -> None:
    assert bigrams("jon") == {"_j", "jo", "on", "n_"}


def test_dice_is_one_for_equal_sets_zero_for_disjoint_and_symmetric() -> None:
    assert dice(0b1011, 0b1011) == 1.0
    assert dice(0b1100, 0b0011) == 0.0
    assert dice(0b1110, 0b0111) == dice(0b0111, 0b1110) == pytest.approx(2 * 2 / 6)
    assert dice(0, 0) == 0.0


def test_the_default_filter_is_1024_bits_after_folding(enc_a: BloomEncoder) -> None:
    assert DEFAULT_BLOOM_PARAMS.output_bits == 1024
    assert encode(enc_a, "Zephaniah").bit_length() <= 1024


@pytest.mark.parametrize(
    ("a", "b"),
    [("Catherine", "Katherine"), ("Llewellyn", "Llywelyn"), ("Stephen", "Steven"),
     ("Mohammed", "Muhammad"), ("Smith-Jones", "Smith Jones"), ("Thompson", "Thomson"),
     ("Macdonald", "McDonald"), ("Jonathan", "Johnathan")],
)  # fmt: skip
def test_similar_names_have_a_high_dice_coefficient(enc_a: BloomEncoder, a: str, b: str) -> None:
    assert dice(encode(enc_a, a), encode(enc_a, b)) >= 0.5


@pytest.mark.parametrize(("a", "b"), [("Catherine", "Bob"), ("Evans", "Pritchard")])
def test_different_names_have_a_low_dice_coefficient(enc_a: BloomEncoder, a: str, b: str) -> None:
    assert dice(encode(enc_a, a), encode(enc_a, b)) <= 0.35


def test_similar_names_score_above_random_pairs_almost_always(enc_a: BloomEncoder) -> None:
    rng = random.Random(7)
    sample = rng.sample(NAMES, 300)

    def typo(name: str) -> str:
        i = rng.randrange(1, len(name) - 1)
        return name[:i] + name[i + 1 :]  # one letter dropped

    similar = [dice(encode(enc_a, n), encode(enc_a, typo(n))) for n in sample]
    shuffled = rng.sample(sample, len(sample))
    random_pairs = [
        dice(encode(enc_a, a), encode(enc_a, b))
        for a, b in zip(sample, shuffled, strict=True)
        if a != b
    ]
    assert statistics.mean(similar) > 0.7
    assert statistics.mean(random_pairs) < 0.3
    beaten = sum(s > r for s, r in zip(similar, random_pairs, strict=False))
    assert beaten / len(random_pairs) > 0.97


def test_encoding_is_deterministic_for_a_key(enc_a: BloomEncoder) -> None:
    again = encoder("bloom A")
    assert encode(enc_a, "Gwenllian") == encode(again, "Gwenllian")


def test_each_field_has_its_own_positions(enc_a: BloomEncoder) -> None:
    as_surname = encode(enc_a, "Morgan", "surname")
    as_forename = encode(enc_a, "Morgan", "forename")
    assert dice(as_surname, as_forename) < 0.4


def test_the_same_name_under_two_keys_compares_like_a_random_pair(
    enc_a: BloomEncoder, enc_b: BloomEncoder
) -> None:
    rng = random.Random(11)
    sample = rng.sample(NAMES, 400)
    same_name_cross_key = [dice(encode(enc_a, n), encode(enc_b, n)) for n in sample]
    shuffled = rng.sample(sample, len(sample))
    other_name_cross_key = [
        dice(encode(enc_a, a), encode(enc_b, b)) for a, b in zip(sample, shuffled, strict=True)
    ]
    other_name_same_key = [
        dice(encode(enc_a, a), encode(enc_a, b))
        for a, b in zip(sample, shuffled, strict=True)
        if a != b
    ]
    cross = statistics.mean(same_name_cross_key)
    noise = 3 * statistics.stdev(other_name_cross_key) / len(sample) ** 0.5
    # Identical names under two keys are no closer than different names under two keys ...
    assert abs(cross - statistics.mean(other_name_cross_key)) < noise
    # ... and no closer than different names under one key.
    assert cross <= statistics.mean(other_name_same_key) + noise


def test_nearest_neighbour_across_keys_re_identifies_no_better_than_chance(
    enc_a: BloomEncoder, enc_b: BloomEncoder
) -> None:
    rng = random.Random(13)
    sample = rng.sample(NAMES, 200)
    under_a = [encode(enc_a, n) for n in sample]
    under_b = [encode(enc_b, n) for n in sample]
    hits = 0
    for i, target in enumerate(under_b):
        best = max(range(len(under_a)), key=lambda j: dice(under_a[j], target))
        hits += best == i
    # Chance is 1 in 200 per name, so 1 expected; P(hits >= 6) under chance is below 0.001.
    assert hits < 6


def test_encodings_round_trip_through_base64url(enc_a: BloomEncoder) -> None:
    bits = encode(enc_a, "Angharad")
    text = to_b64(bits, DEFAULT_BLOOM_PARAMS.output_bits)
    assert len(text) == 171 and "=" not in text
    assert from_b64(text) == bits


def test_xor_folding_halves_the_length(enc_a: BloomEncoder) -> None:
    unfolded = encoder("bloom A", BloomParams(length=2048, folds=0, default_hashes=30))
    assert encode(unfolded, "Angharad").bit_length() > 1024
    assert unfolded.params.output_bits == 2048


def test_the_scheme_names_its_parameters_and_differs_when_they_change() -> None:
    other = BloomParams(length=1024, folds=1, default_hashes=20)
    assert DEFAULT_BLOOM_PARAMS.scheme.startswith("bf1:l=2048:fold=1")
    assert other.scheme != DEFAULT_BLOOM_PARAMS.scheme


def test_bad_parameters_and_keys_of_another_purpose_are_refused() -> None:
    with pytest.raises(ValueError):
        BloomParams(length=1000)
    with pytest.raises(ValueError):
        BloomParams(default_hashes=0)
    with pytest.raises(ValueError):
        BloomEncoder(fixed_key("x").derive(LINKAGE_EXACT, 1))


def test_empty_input_gives_no_encoding(enc_a: BloomEncoder) -> None:
    assert enc_a.encode_tokens("surname", []) is None
    assert enc_a.encode_tokens("surname", [""]) is None
