"""``LeakScanner`` finds what ``find_leaks`` finds, for many canaries at once."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from fjo.leakscan import LeakScanner, find_leaks

CANARIES = ("Quillfeather", "Siôn-Pellucid", "7382910466", "17 Canarywhistle Terrace")


@pytest.mark.parametrize(
    "blob",
    [
        b'{"forename": "QUILLFEATHER"}',
        json.dumps({"n": "Siôn-Pellucid"}).encode(),  # JSON-escaped accent
        b"nhs=738 291 0466".replace(b" ", b""),
        hashlib.sha256(b"quillfeather").hexdigest().encode(),
        base64.b64encode(hashlib.sha1(b"7382910466").digest()),
        base64.urlsafe_b64encode(b"17 Canarywhistle Terrace"),
        b"x sion-pellucid y",
    ],
)
def test_the_scanner_finds_what_find_leaks_finds(blob: bytes) -> None:
    expected = find_leaks(blob, CANARIES)
    assert expected, "the example must be a leak"
    found = LeakScanner(CANARIES).scan(blob).findings
    assert {f.split(":")[0] for f in found} == {f.split(":")[0] for f in expected}


def test_a_keyed_hmac_and_unrelated_text_are_clean() -> None:
    import hmac

    blob = hmac.new(b"k" * 32, b"Quillfeather", "sha256").hexdigest().encode() + b" hello"
    assert LeakScanner(CANARIES).scan(blob).findings == []


def test_bounded_clear_counts_a_name_inside_a_token_as_chance_not_a_leak() -> None:
    scanner = LeakScanner(["Morgan"], bounded_clear=True)
    inside = scanner.scan(b"tok=aZ9morganQx7 ")
    assert inside.findings == []
    assert scanner.scan(b'{"surname":"Morgan"} tok=aZ9morganQx7').findings == ["'Morgan': in clear"]
    both = scanner.scan(b'{"a":"Morgans","b":"Morgan"}')
    assert both.findings == ["'Morgan': in clear"] and both.chance_hits == 1
    assert LeakScanner(["Morgan"]).scan(b"tok=aZ9morganQx7 ").findings  # unbounded: reported


def test_hashed_only_canaries_are_looked_for_hashed_not_in_clear() -> None:
    scanner = LeakScanner([], hashed_only=["2019-03-04"])
    assert scanner.scan(b"received 2019-03-04").findings == []
    digest = hashlib.md5(b"2019-03-04").hexdigest().encode()
    assert scanner.scan(b"x " + digest).findings


def test_short_canaries_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        LeakScanner(["Ann"])
