"""Keyed HMAC-SHA256 tokens for exact comparison, domain-separated by comparison domain.

A token is ``base64url(HMAC-SHA256(key, domain || 0x00 || value))`` truncated to
:data:`TOKEN_BYTES` (128 bits, 22 characters, no padding). The domain (``"surname"``,
``"forename"``, ``"dob_full"``, ...) is part of the message, so the same string gives
unrelated tokens in different domains. Without the key a token cannot be recomputed, so a
dictionary of names or NHS numbers does not reverse it (unlike a bare or salted hash).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac

from services.pseudonymise.domain.keys import LINKAGE_EXACT, RECORD_TOKEN, DerivedKey

__all__ = [
    "CACHE_SIZE",
    "TOKEN_BYTES",
    "UNCACHED_DOMAINS",
    "RecordTokeniser",
    "Tokeniser",
    "b64url",
]

TOKEN_BYTES = 16
"""Token length in bytes: 128 bits keeps collisions negligible (birthday bound 2**64)."""


_B64URL = bytes.maketrans(b"+/", b"-_")

UNCACHED_DOMAINS = frozenset({"nhs", "dob_full"})
"""NHS numbers and whole dates of birth are never kept (docs/pseudonymisation.md, §6)."""

CACHE_SIZE = 1 << 17
"""Tokens kept per tokeniser (the first values seen; recurring ones are seen early). The
tokens live only in the pseudonymise process, which holds the key and the clear values
anyway; about 30 MB when full."""


def b64url(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return binascii.b2a_base64(data, newline=False).translate(_B64URL).rstrip(b"=").decode()


_BLOCK = 64  # SHA-256 block size in bytes
_IPAD = bytes(0x36 for _ in range(_BLOCK))
_OPAD = bytes(0x5C for _ in range(_BLOCK))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class Tokeniser:
    """Makes keyed tokens under one derived key; reuse one instance (its HMAC state is cached).

    HMAC-SHA256 (RFC 2104) is computed from SHA-256 states that have already absorbed the
    key's inner and outer pads, so each token costs two hash-state copies and no key setup;
    the construction is checked against :func:`hmac.new` when the tokeniser is built.
    """

    __slots__ = ("_cache", "_cache_size", "_inner", "_length", "_outer", "key_version", "purpose")

    def __init__(
        self, key: DerivedKey, *, length: int = TOKEN_BYTES, cache_size: int = CACHE_SIZE
    ) -> None:
        if not 16 <= length <= 32:
            raise ValueError("token length must be 16..32 bytes")
        if len(key.material) > _BLOCK:
            raise ValueError("derived keys longer than one SHA-256 block are not supported")
        self.purpose = key.purpose
        self.key_version = key.version
        self._length = length
        self._cache: dict[tuple[str, str | bytes], str] = {}
        self._cache_size = cache_size
        padded = key.material.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(_xor(padded, _IPAD))
        self._outer = hashlib.sha256(_xor(padded, _OPAD))
        probe = b"fjo/tokeniser/self-check"
        if self._mac(probe) != hmac.new(key.material, probe, hashlib.sha256).digest():
            raise RuntimeError("HMAC self-check failed")

    def __repr__(self) -> str:
        return f"Tokeniser(purpose={self.purpose!r}, key_version={self.key_version})"

    def _mac(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def digest(self, domain: str, value: str | bytes) -> bytes:
        """The truncated raw MAC of ``value`` in ``domain``."""
        if "\x00" in domain:
            raise ValueError("domain names cannot contain NUL")
        data = value.encode("utf-8") if isinstance(value, str) else value
        return self._mac(domain.encode("utf-8") + b"\x00" + data)[: self._length]

    def token(self, domain: str, value: str | bytes) -> str:
        """The token of ``value`` in ``domain`` (base64url, 22 characters at 128 bits)."""
        # Hot path (about 27 calls per record): digest() and b64url() inlined, and most
        # values (names, date parts, postcode parts, sex) recur, so their tokens are kept.
        cached = self._cache.get((domain, value))
        if cached is not None:
            return cached
        if "\x00" in domain:
            raise ValueError("domain names cannot contain NUL")
        data = value.encode() if isinstance(value, str) else value
        inner = self._inner.copy()
        inner.update(domain.encode() + b"\x00" + data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        raw = binascii.b2a_base64(outer.digest()[: self._length], newline=False)
        token = raw.translate(_B64URL).rstrip(b"=").decode()
        if len(self._cache) < self._cache_size and domain not in UNCACHED_DOMAINS:
            self._cache[(domain, value)] = token
        return token

    @classmethod
    def for_linkage(cls, key: DerivedKey) -> Tokeniser:
        """A tokeniser for exact-comparison linkage keys (purpose ``linkage-exact``)."""
        if key.purpose != LINKAGE_EXACT:
            raise ValueError(f"expected a {LINKAGE_EXACT!r} key, got {key.purpose!r}")
        return cls(key)


def _length_prefixed(*parts: str) -> bytes:
    """Unambiguous concatenation: ("a", "bc") and ("ab", "c") encode differently."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


class RecordTokeniser:
    """Record tokens: the pseudonym that replaces a source's own record id.

    ``record_token(source, record_type, record_id)`` is stable for a key version, so a
    child record's ``case_id`` reference and the case record itself get the same token and
    still join on the research side.
    """

    __slots__ = ("_prefixes", "_tokeniser")

    def __init__(self, key: DerivedKey) -> None:
        if key.purpose != RECORD_TOKEN:
            raise ValueError(f"expected a {RECORD_TOKEN!r} key, got {key.purpose!r}")
        self._tokeniser = Tokeniser(key, cache_size=0)  # record ids do not recur
        # The length-prefixed (source, record type) that begins every message: a few pairs.
        self._prefixes: dict[tuple[str, str], bytes] = {}

    @property
    def key_version(self) -> int:
        return self._tokeniser.key_version

    def __repr__(self) -> str:
        return f"RecordTokeniser(key_version={self.key_version})"

    def record_token(self, source: str, record_type: str, record_id: str | int) -> str:
        """The token of record ``record_id`` of type ``record_type`` sent by ``source``."""
        if not source or not record_type:
            raise ValueError("source and record type are required")
        rid = str(record_id)
        if not rid:
            raise ValueError("record id is empty")
        prefix = self._prefixes.get((source, record_type))
        if prefix is None:
            prefix = _length_prefixed(source, record_type)
            if len(self._prefixes) < 1024:
                self._prefixes[(source, record_type)] = prefix
        return self._tokeniser.token("record", prefix + _length_prefixed(rid))
