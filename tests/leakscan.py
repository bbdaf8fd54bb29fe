"""Canary leak scanner: does a blob contain an identifier in clear or as an unkeyed hash?

``find_leaks(blob, canaries)`` looks for each canary in ``blob`` (text or bytes: a Kafka
payload, a database dump, a log file, an extract) in these forms:

* in clear, case-insensitively, as written and normalised: trimmed, case-folded,
  accents stripped (Siôn -> sion), and letters/digits only (``943 476 5919`` ->
  ``9434765919``, ``Smith-Jones`` -> ``smithjones``), and JSON-escaped (``Si\\u00f4n``);
* base64 (standard and URL-safe) and hex of those forms (encoded, not hashed);
* the unkeyed MD5, SHA-1, SHA-256 and SHA-512 of every form above, as hex (either case) and
  base64 (standard and URL-safe), including truncated digests: a prefix of 24 hex or 20
  base64 characters (at least 90 bits) is enough to report.

A keyed HMAC of a canary is, by design, not found. Canaries must be distinctive (at least
six characters, e.g. ``Quillfeather`` rather than ``Ann``) or a random token could contain
them by chance; a shorter one raises ValueError. Note that a date of birth that falls on a
Monday equals its own week of birth, which may appear downstream by design: pick canary
dates of birth that are not Mondays.

Returns one line per finding, naming the canary and the form found; empty means clean.
Used by the pseudonymise unit tests and by the platform-wide canary test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["MIN_CANARY_LENGTH", "canary_forms", "find_leaks"]

MIN_CANARY_LENGTH = 6
_HEX_PREFIX = 24
_B64_PREFIX = 20
_HASHES = ("md5", "sha1", "sha256", "sha512")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def canary_forms(canary: str) -> dict[str, str]:
    """The clear-text forms of ``canary`` that are searched and hashed, by name."""
    trimmed = canary.strip()
    folded = _strip_accents(trimmed).casefold()
    forms = {
        "as written": canary,
        "trimmed": trimmed,
        "lower": trimmed.lower(),
        "upper": trimmed.upper(),
        "casefold": trimmed.casefold(),
        "folded": folded,
        "alnum": _NON_ALNUM.sub("", folded),
        "ALNUM": _NON_ALNUM.sub("", folded).upper(),
        "json-escaped": json.dumps(trimmed)[1:-1],
    }
    out: dict[str, str] = {}
    for name, form in forms.items():
        if form and form not in out.values():
            out[name] = form
    return out


def _encodings(data: bytes) -> dict[str, str]:
    std = base64.b64encode(data).decode("ascii")
    url = base64.urlsafe_b64encode(data).decode("ascii")
    return {
        "hex": data.hex()[:_HEX_PREFIX],
        "base64": std.rstrip("=")[:_B64_PREFIX],
        "base64url": url.rstrip("=")[:_B64_PREFIX],
    }


def find_leaks(blob: str | bytes, canaries: Iterable[str]) -> list[str]:
    """Findings of any canary in ``blob`` in clear, encoded, or as an unkeyed hash."""
    if isinstance(blob, bytes):
        text = blob.decode("utf-8", errors="replace")
        latin = blob.decode("latin-1")
    else:
        text = latin = blob
    haystack = text + "\n" + latin
    haystack_lower = haystack.casefold()
    haystack_folded = _strip_accents(haystack).casefold()

    findings: list[str] = []
    for canary in canaries:
        if len(canary.strip()) < MIN_CANARY_LENGTH:
            raise ValueError(
                f"canary {canary!r} is shorter than {MIN_CANARY_LENGTH} characters: "
                "use a distinctive value"
            )
        forms = canary_forms(canary)
        for form_name, form in forms.items():
            needle = form.casefold()
            if len(needle) >= MIN_CANARY_LENGTH and (
                needle in haystack_lower or needle in haystack_folded
            ):
                findings.append(f"{canary!r}: in clear ({form_name})")
                break
        for form_name, form in forms.items():
            data = form.encode("utf-8")
            candidates = {"": data}
            for algorithm in _HASHES:
                candidates[algorithm] = hashlib.new(algorithm, data).digest()
            for algorithm, digest in candidates.items():
                for encoding, needle in _encodings(digest).items():
                    if len(needle) < 8:
                        continue
                    found = needle in haystack_lower if encoding == "hex" else needle in haystack
                    if found:
                        what = f"unkeyed {algorithm}" if algorithm else "encoded"
                        findings.append(f"{canary!r}: {what} as {encoding} of {form_name} form")
    return findings
