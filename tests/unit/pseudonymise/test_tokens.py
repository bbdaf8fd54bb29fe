"""Keyed HMAC tokens: length, determinism, domain separation and key separation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.pseudonymise.domain import (
    ALF,
    LINKAGE_EXACT,
    RECORD_TOKEN,
    TOKEN_BYTES,
    RecordTokeniser,
    Tokeniser,
)
from tests.unit.pseudonymise.conftest import fixed_key


@pytest.fixture
def tokeniser() -> Tokeniser:
    return Tokeniser(fixed_key("tokens").derive(LINKAGE_EXACT, 1))


def test_a_token_is_128_bits_of_unpadded_base64url(tokeniser: Tokeniser) -> None:
    token = tokeniser.token("surname", "evans")
    assert TOKEN_BYTES == 16
    assert len(token) == 22 and "=" not in token
    assert len(base64.urlsafe_b64decode(token + "==")) == 16


def test_a_token_is_the_truncated_hmac_of_domain_nul_value(tokeniser: Tokeniser) -> None:
    key = fixed_key("tokens").derive(LINKAGE_EXACT, 1).material
    expected = hmac.new(key, b"surname\x00evans", hashlib.sha256).digest()[:16]
    assert tokeniser.digest("surname", "evans") == expected


def test_the_same_value_and_key_always_give_the_same_token(tokeniser: Tokeniser) -> None:
    again = Tokeniser(fixed_key("tokens").derive(LINKAGE_EXACT, 1))
    assert tokeniser.token("forename", "dafydd") == again.token("forename", "dafydd")


def test_a_surname_token_never_equals_a_forename_token_for_the_same_string(
    tokeniser: Tokeniser,
) -> None:
    assert tokeniser.token("surname", "thomas") != tokeniser.token("forename", "thomas")


def test_domain_and_value_cannot_be_shifted_into_each_other(tokeniser: Tokeniser) -> None:
    with pytest.raises(ValueError):
        tokeniser.token("sur\x00name", "x")
    assert tokeniser.token("ab", "c") != tokeniser.token("a", "bc")


def test_keys_of_different_purposes_give_different_tokens() -> None:
    key = fixed_key("tokens")
    linkage = Tokeniser(key.derive(LINKAGE_EXACT, 1)).token("nhs", "9434765919")
    alf = Tokeniser(key.derive(ALF, 1)).token("nhs", "9434765919")
    assert linkage != alf


def test_a_token_is_not_an_unkeyed_hash_of_the_value(tokeniser: Tokeniser) -> None:
    token = tokeniser.digest("nhs", "9434765919")
    for algorithm in ("md5", "sha1", "sha256"):
        for message in (b"9434765919", b"nhs\x009434765919"):
            assert not hashlib.new(algorithm, message).digest().startswith(token[:8])


def test_record_tokens_depend_on_source_type_and_id() -> None:
    records = RecordTokeniser(fixed_key("tokens").derive(RECORD_TOKEN, 1))
    base = records.record_token("cafcass-cymru", "child", "C1")
    assert base == records.record_token("cafcass-cymru", "child", "C1")
    assert base != records.record_token("cafcass-england", "child", "C1")
    assert base != records.record_token("cafcass-cymru", "adult", "C1")
    assert base != records.record_token("cafcass-cymru", "child", "C2")
    # length-prefixed parts: moving characters between parts changes the token
    assert records.record_token("ab", "c", "1") != records.record_token("a", "bc", "1")


def test_tokenisers_refuse_keys_made_for_another_purpose() -> None:
    with pytest.raises(ValueError):
        RecordTokeniser(fixed_key("tokens").derive(LINKAGE_EXACT, 1))
    with pytest.raises(ValueError):
        Tokeniser.for_linkage(fixed_key("tokens").derive(RECORD_TOKEN, 1))


@pytest.mark.parametrize(
    ("domain", "value"),
    [("forename", "siôn"), ("address", "x" * 200), ("nhs", ""), ("dob_full", "2016-03-04")],
)
def test_tokens_equal_the_standard_library_hmac_for_any_input(
    tokeniser: Tokeniser, domain: str, value: str
) -> None:
    key = fixed_key("tokens").derive(LINKAGE_EXACT, 1).material
    message = domain.encode() + b"\x00" + value.encode()
    expected = hmac.new(key, message, hashlib.sha256).digest()[:16]
    assert base64.urlsafe_b64decode(tokeniser.token(domain, value) + "==") == expected
