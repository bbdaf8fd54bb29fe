"""Keyed, hardened Bloom-filter encodings of names and addresses, and their Dice similarity.

Scheme ``bf1`` (see docs/pseudonymisation.md for the threat model and the choice of
parameters):

* a value is a set of padded bigrams (``"jon"`` -> ``_j jo on n_``); a multi-token value is
  the union over its tokens and their joined form;
* each bigram sets ``k`` bit positions chosen by HMAC-SHA256 under a per-field subkey of the
  ``linkage-bloom`` key (random hashing: independent positions, not the double-hashing
  arithmetic progression that the Niedermeyer/Kroll-Steinmetzer attacks exploit);
* the ``length``-bit filter is XOR-folded ``folds`` times (Schnell, Borgs & Encrypt 2016), so
  no output bit stands for one bigram position any more.

Encodings are Python ints used as bitsets; :func:`dice` uses ``int.bit_count``. On the wire
an encoding is unpadded base64url of its big-endian bytes (:func:`to_b64`, :func:`from_b64`).
Encodings are only comparable when made with the same scheme *and* key version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from services.pseudonymise.domain.keys import LINKAGE_BLOOM, DerivedKey

__all__ = [
    "DEFAULT_BLOOM_PARAMS",
    "BloomEncoder",
    "BloomParams",
    "bigrams",
    "dice",
    "from_b64",
    "to_b64",
]


@dataclass(frozen=True, slots=True)
class BloomParams:
    """Filter length before folding (a power of two), XOR folds, and hash positions per bigram.

    ``hashes`` gives ``k`` per field name; fields not named use ``default_hashes``.
    """

    length: int = 2048
    folds: int = 1
    default_hashes: int = 20
    hashes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.length < 64 or self.length & (self.length - 1):
            raise ValueError("Bloom filter length must be a power of two, at least 64")
        if not 0 <= self.folds <= 3:
            raise ValueError("folds must be 0..3")
        for k in (self.default_hashes, *self.hashes.values()):
            if not 1 <= k <= 64:
                raise ValueError("hashes per bigram must be 1..64")

    def k(self, field_name: str) -> int:
        return self.hashes.get(field_name, self.default_hashes)

    @property
    def output_bits(self) -> int:
        return self.length >> self.folds

    @property
    def scheme(self) -> str:
        """A short id of the encoding scheme; compare only encodings with equal schemes."""
        ks = ",".join(f"{name}={k}" for name, k in sorted(self.hashes.items()))
        return f"bf1:l={self.length}:fold={self.folds}:k={self.default_hashes}[{ks}]"


DEFAULT_BLOOM_PARAMS = BloomParams(
    length=2048,
    folds=1,
    default_hashes=20,
    hashes={"forename": 30, "surname": 30, "full_name": 20, "address": 10},
)
"""The parameters fjo uses; changing them is a new scheme (docs/pseudonymisation.md)."""


@lru_cache(maxsize=65536)
def bigrams(token: str) -> frozenset[str]:
    """Padded bigrams of one token: ``"jon"`` -> {"_j", "jo", "on", "n_"}."""
    padded = f"_{token}_"
    return frozenset(padded[i : i + 2] for i in range(len(padded) - 1))


class BloomEncoder:
    """Bloom-filter encoder under one ``linkage-bloom`` key; reuse one instance per key version.

    Bit masks are cached per field, per bigram and per token (bounded; they live only in the
    pseudonymise process, which sees the clear values anyway).
    """

    __slots__ = (
        "_cache",
        "_fold_mask",
        "_key",
        "_templates",
        "_token_cache",
        "key_version",
        "params",
    )

    def __init__(self, key: DerivedKey, params: BloomParams = DEFAULT_BLOOM_PARAMS) -> None:
        if key.purpose != LINKAGE_BLOOM:
            raise ValueError(f"expected a {LINKAGE_BLOOM!r} key, got {key.purpose!r}")
        self.params = params
        self.key_version = key.version
        self._key = key
        self._templates: dict[str, Any] = {}
        self._cache: dict[str, dict[str, int]] = {}  # field -> bigram -> unfolded mask
        self._token_cache: dict[str, dict[str, int]] = {}  # field -> token -> unfolded mask
        self._fold_mask = (1 << params.output_bits) - 1

    def __repr__(self) -> str:
        return f"BloomEncoder(scheme={self.params.scheme!r}, key_version={self.key_version})"

    @property
    def scheme(self) -> str:
        return self.params.scheme

    def _template(self, field_name: str) -> Any:
        template = self._templates.get(field_name)
        if template is None:
            # Per-field keyed salting: each field has its own subkey, so a bigram sets
            # unrelated positions in the forename and surname filters.
            subkey = self._key.subkey(f"bloom-field:{field_name}")
            template = hmac.new(subkey, digestmod=hashlib.sha256)
            self._templates[field_name] = template
        return template

    def _mask(self, field_name: str, gram: str) -> int:
        cache = self._cache.setdefault(field_name, {})
        mask = cache.get(gram)
        if mask is not None:
            return mask
        template = self._template(field_name)
        k = self.params.k(field_name)
        bits_per_position = self.params.length.bit_length() - 1
        per_digest = 256 // bits_per_position
        positions: set[int] = set()
        counter = 0
        while len(positions) < k:
            mac = template.copy()
            mac.update(counter.to_bytes(2, "big") + gram.encode("utf-8"))
            value = int.from_bytes(mac.digest(), "big")
            for _ in range(per_digest):
                positions.add(value & (self.params.length - 1))
                value >>= bits_per_position
                if len(positions) == k:
                    break
            counter += 1
        mask = 0
        for position in positions:
            mask |= 1 << position
        if len(cache) < 100_000:
            cache[gram] = mask
        return mask

    def _fold(self, bits: int) -> int:
        width = self.params.length
        for _ in range(self.params.folds):
            width //= 2
            bits = (bits & ((1 << width) - 1)) ^ (bits >> width)
        return bits

    def encode_grams(self, field_name: str, grams: Iterable[str]) -> int:
        """The filter of a set of q-grams in ``field_name``."""
        bits = 0
        for gram in grams:
            bits |= self._mask(field_name, gram)
        return self._fold(bits)

    def encode_tokens(self, field_name: str, tokens: Iterable[str]) -> int | None:
        """The filter of normalised tokens (union of their padded bigrams); None if empty."""
        cache = self._token_cache.setdefault(field_name, {})
        bits = 0
        for token in tokens:
            if not token:
                continue
            mask = cache.get(token)
            if mask is None:
                mask = 0
                for gram in bigrams(token):
                    mask |= self._mask(field_name, gram)
                if len(cache) < 100_000:
                    cache[token] = mask
            bits |= mask
        if not bits:
            return None
        return self._fold(bits)


def dice(a: int, b: int) -> float:
    """Dice coefficient of two bitsets: 2|a∧b| / (|a|+|b|); 0.0 when both are empty."""
    total = a.bit_count() + b.bit_count()
    if total == 0:
        return 0.0
    return 2 * (a & b).bit_count() / total


def to_b64(bits: int, n_bits: int) -> str:
    """Wire form of an encoding: unpadded base64url of its ``n_bits/8`` big-endian bytes."""
    return base64.urlsafe_b64encode(bits.to_bytes(n_bits // 8, "big")).rstrip(b"=").decode()


def from_b64(text: str) -> int:
    """The bitset from :func:`to_b64` text."""
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")
