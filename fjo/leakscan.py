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

``LeakScanner`` applies the same forms to many canaries at once (a whole synthetic world,
for ``fjo demo``): every needle is indexed by its first six characters, so a blob is read
once whatever the number of canaries. Two options make a world of ordinary values usable as
canaries: ``hashed_only`` canaries (dates of birth, which legitimately equal other dates kept
for research) are looked for only encoded or hashed, and with ``bounded_clear`` a clear-text
finding must not be flanked by letters or digits, because a six-letter surname occurs by
chance inside megabytes of base64 tokens (such chance hits are counted, not reported).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_CANARY_LENGTH", "LeakScanner", "canary_forms", "find_leaks"]

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


_PREFIX = 8  # every encoded or hashed needle has at least 8 characters
_WORD = re.compile(r"[^\W_]+")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_=-]{8,}")
_HEX_RUN = re.compile(r"[0-9a-f]{8,}")


@dataclass
class ScanResult:
    """Findings (leaks) and chance hits of clear values inside longer alphanumeric runs."""

    findings: list[str] = field(default_factory=list)
    chance_hits: int = 0


@dataclass
class _Needles:
    clear: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """casefolded clear form -> canaries"""
    hex: dict[str, list[tuple[str, str, str]]] = field(default_factory=lambda: defaultdict(list))
    """8-char prefix -> (needle, canary, what); matched in the lower-cased blob"""
    b64: dict[str, list[tuple[str, str, str]]] = field(default_factory=lambda: defaultdict(list))
    """8-char prefix -> (needle, canary, what); matched in the blob as is"""


class LeakScanner:
    """``find_leaks`` for many canaries: needles are built once and a blob is read a few times.

    Encoded and hashed needles (hex and base64, at least 8 characters) are found through
    their 8-character prefixes in the runs of hex or base64 characters of the blob (read as
    latin-1, byte for byte). Clear needles are found with ``str.find`` in the lower-cased and
    the accent-stripped, case-folded text; with ``bounded_clear``, only those whose words all
    occur as words of the blob are searched, and a match flanked by a letter or digit counts
    as chance.
    """

    def __init__(
        self,
        canaries: Iterable[str],
        *,
        hashed_only: Iterable[str] = (),
        bounded_clear: bool = False,
    ) -> None:
        self.bounded_clear = bounded_clear
        hashed = set(hashed_only)
        self._n = _Needles()
        self.canaries = 0
        for canary in dict.fromkeys([*canaries, *hashed]):
            if len(canary.strip()) < MIN_CANARY_LENGTH:
                raise ValueError(
                    f"canary {canary!r} is shorter than {MIN_CANARY_LENGTH} characters: "
                    "use a distinctive value"
                )
            self.canaries += 1
            forms = canary_forms(canary)
            if canary not in hashed:
                for form in forms.values():
                    needle = form.casefold()
                    if len(needle) >= MIN_CANARY_LENGTH and canary not in self._n.clear[needle]:
                        self._n.clear[needle].append(canary)
            for form_name, form in forms.items():
                data = form.encode("utf-8")
                candidates = {"": data}
                for algorithm in _HASHES:
                    candidates[algorithm] = hashlib.new(algorithm, data).digest()
                for algorithm, digest in candidates.items():
                    what = f"unkeyed {algorithm}" if algorithm else "encoded"
                    for encoding, needle in _encodings(digest).items():
                        if len(needle) < _PREFIX:
                            continue
                        entry = (needle, canary, f"{what} as {encoding} of {form_name} form")
                        table = self._n.hex if encoding == "hex" else self._n.b64
                        table[needle[:_PREFIX]].append(entry)

    def scan(self, blob: str | bytes) -> ScanResult:
        """Every canary found in ``blob`` (once per canary and kind of finding)."""
        if isinstance(blob, bytes):
            text = blob.decode("utf-8", errors="replace")
            latin = blob.decode("latin-1")
        else:
            text = latin = blob
        result = ScanResult()
        seen: set[tuple[str, str]] = set()

        def found(canary: str, what: str, kind: str) -> None:
            if (canary, kind) not in seen:
                seen.add((canary, kind))
                result.findings.append(f"{canary!r}: {what}")

        lowered = latin.casefold() if text == latin else (text + "\n" + latin).casefold()
        folded = _strip_accents(text).casefold()
        for hay in dict.fromkeys((lowered, folded)):
            self._clear(hay, result, found)
        for hay, runs, table in (
            (latin, _B64_RUN, self._n.b64),
            (latin.lower(), _HEX_RUN, self._n.hex),
        ):
            if not table:
                continue
            for run in runs.finditer(hay):
                r = run.group()
                for i in range(len(r) - _PREFIX + 1):
                    entries = table.get(r[i : i + _PREFIX])
                    if entries is None:
                        continue
                    for needle, canary, what in entries:
                        if r.startswith(needle, i):
                            found(canary, what, what)
        return result

    def _clear(self, hay: str, result: ScanResult, found: Any) -> None:
        needles = self._n.clear
        if self.bounded_clear:
            words = set(_WORD.findall(hay))
            candidates = [n for n in needles if all(w in words for w in _WORD.findall(n))]
        else:
            candidates = list(needles)
        for needle in candidates:
            start = hay.find(needle)
            while start != -1:
                if self.bounded_clear and _flanked(hay, start, len(needle)):
                    result.chance_hits += 1
                else:
                    for canary in needles[needle]:
                        found(canary, "in clear", "clear")
                    break
                start = hay.find(needle, start + 1)


def _flanked(hay: str, start: int, length: int) -> bool:
    before = hay[start - 1] if start > 0 else ""
    after = hay[start + length] if start + length < len(hay) else ""
    return before.isalnum() or after.isalnum()
