"""Key management: master keys, a versioned key ring, and per-purpose keys derived by HKDF.

Every secret used by pseudonymise is derived from a managed master key with HKDF-SHA256
(RFC 5869): one derived key per *purpose* and *key version*, so a leaked project key says
nothing about linkage keys, and rotating the master key changes every derived key at once.

Purposes: ``record-token``, ``linkage-exact``, ``linkage-bloom``, ``alf`` and
``project:<id>``. The HKDF ``info`` string binds purpose and version
(``fjo/pseudonymise/v1/<purpose>/key-version=<n>``), so two versions never share a derived
key even if an operator were to reuse master material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ALF",
    "FIXED_PURPOSES",
    "LINKAGE_BLOOM",
    "LINKAGE_EXACT",
    "MIN_MASTER_KEY_BYTES",
    "RECORD_TOKEN",
    "DerivedKey",
    "KeyMaterialError",
    "KeyRing",
    "KeyVersionError",
    "MasterKey",
    "RetiredKeyVersionError",
    "UnknownKeyVersionError",
    "project_purpose",
    "validate_purpose",
]

RECORD_TOKEN = "record-token"  # noqa: S105 (a purpose name, not a secret)
LINKAGE_EXACT = "linkage-exact"
LINKAGE_BLOOM = "linkage-bloom"
ALF = "alf"
FIXED_PURPOSES: frozenset[str] = frozenset({RECORD_TOKEN, LINKAGE_EXACT, LINKAGE_BLOOM, ALF})

MIN_MASTER_KEY_BYTES = 32
DERIVED_KEY_BYTES = 32

# A fixed, public application salt: RFC 5869 allows a non-secret salt; fixing it makes
# derivation reproducible from the master key alone, which rotation depends on.
_HKDF_SALT = b"fjo/pseudonymise/hkdf-salt/v1"
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX_TEXT = re.compile(rb"[0-9a-fA-F]+")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_PLACEHOLDER_WORDS = (
    b"changeme",
    b"change-me",
    b"change_me",
    b"placeholder",
    b"example",
    b"secret",
    b"password",
    b"dummy",
    b"default",
    b"insecure",
    b"notakey",
    b"replace",
    b"todo",
    b"xxxx",
)


class KeyMaterialError(ValueError):
    """Key material is too short, looks like a placeholder, or cannot be decoded."""


class KeyVersionError(LookupError):
    """A key version cannot be used."""


class UnknownKeyVersionError(KeyVersionError):
    """The key ring has never held this version."""


class RetiredKeyVersionError(KeyVersionError):
    """The version was retired: its material is gone and it must not be used again."""


def project_purpose(project_id: str) -> str:
    """The purpose string of one research project's pseudonyms: ``project:<id>``."""
    if not _PROJECT_ID.fullmatch(project_id):
        raise ValueError("project id must be 1-64 characters of [A-Za-z0-9._-]")
    return f"project:{project_id}"


def validate_purpose(purpose: str) -> str:
    """Return ``purpose`` if it is one of the fixed purposes or ``project:<id>``; else raise."""
    if purpose in FIXED_PURPOSES:
        return purpose
    if purpose.startswith("project:") and _PROJECT_ID.fullmatch(purpose[len("project:") :]):
        return purpose
    raise ValueError(f"unknown key purpose {purpose!r}")


def _looks_like_placeholder(material: bytes) -> str | None:
    """Why ``material`` looks like a placeholder rather than random bytes, or None."""
    lowered = material.lower()
    for word in _PLACEHOLDER_WORDS:
        if word in lowered:
            return f"contains {word.decode()!r}"
    # 32 random bytes have about 30 distinct values; fewer than 16 means a pattern.
    if len(set(material)) < 16:
        return "too few distinct byte values"
    for period in range(1, 17):
        if all(material[i] == material[i - period] for i in range(period, len(material))):
            return f"repeats with period {period}"
    steps = {(material[i] - material[i - 1]) % 256 for i in range(1, len(material))}
    if len(steps) == 1:
        return "is an arithmetic sequence"
    return None


def _decode_text(data: bytes) -> bytes:
    """Decode hex or base64 key text; raw binary is returned unchanged."""
    text = data.strip()
    # Text of hex digits only is hex (random base64 of 32+ bytes is never all hex digits).
    if _HEX_TEXT.fullmatch(text) and len(text) % 2 == 0:
        return binascii.unhexlify(text)
    if _BASE64_TEXT.fullmatch(text):
        padded = text + b"=" * (-len(text) % 4)
        try:
            if b"-" in text or b"_" in text:
                return base64.urlsafe_b64decode(padded)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyMaterialError("key text is neither valid hex nor base64") from exc
    try:
        text.decode("ascii")
    except UnicodeDecodeError:
        return data  # raw random bytes
    if all(32 <= b < 127 or b in b"\t\r\n" for b in text):
        raise KeyMaterialError(
            "key file holds plain text that is neither hex nor base64 (a passphrase?); "
            "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return data


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A master key: at least 32 random bytes, never printed.

    Load it with :meth:`from_file` from a secret mount; the caller owns the path.
    """

    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.material, bytes):
            raise TypeError("master key material must be bytes")
        if len(self.material) < MIN_MASTER_KEY_BYTES:
            raise KeyMaterialError(
                f"master key must be at least {MIN_MASTER_KEY_BYTES} bytes, "
                f"got {len(self.material)}"
            )
        reason = _looks_like_placeholder(self.material)
        if reason is not None:
            raise KeyMaterialError(f"master key looks like a placeholder: it {reason}")

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint()!r})"

    @classmethod
    def from_text(cls, text: str | bytes) -> MasterKey:
        """A key from hex or base64 text (surrounding whitespace ignored)."""
        data = text.encode("ascii") if isinstance(text, str) else text
        return cls(_decode_text(data))

    @classmethod
    def from_file(cls, path: str | Path) -> MasterKey:
        """Read a key file: raw bytes, or hex / base64 text; short or placeholder keys refused."""
        data = Path(path).read_bytes()
        if not data.strip():
            raise KeyMaterialError("key file is empty")
        return cls(_decode_text(data))

    @classmethod
    def generate(cls, n_bytes: int = MIN_MASTER_KEY_BYTES) -> MasterKey:
        """A fresh random key (for tests, demos and key ceremonies)."""
        return cls(secrets.token_bytes(n_bytes))

    def fingerprint(self) -> str:
        """A short non-secret identifier of this key, safe to log (a keyed one-way value)."""
        digest = hmac.new(self.material, b"fjo/pseudonymise/fingerprint", hashlib.sha256)
        return digest.hexdigest()[:16]

    def derive(self, purpose: str, version: int) -> DerivedKey:
        """The key for ``purpose`` under key version ``version`` (HKDF-SHA256, 32 bytes)."""
        validate_purpose(purpose)
        info = f"fjo/pseudonymise/v1/{purpose}/key-version={version}".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=DERIVED_KEY_BYTES, salt=_HKDF_SALT, info=info)
        return DerivedKey(purpose=purpose, version=version, material=hkdf.derive(self.material))


@dataclass(frozen=True, slots=True)
class DerivedKey:
    """A key for one purpose under one key version; outputs made with it carry ``version``."""

    purpose: str
    version: int
    material: bytes = field(repr=False)

    def subkey(self, label: str) -> bytes:
        """A further key for one use inside this purpose (e.g. one Bloom-filter field)."""
        return hmac.new(self.material, b"subkey\x00" + label.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Versioned master keys: the current version encodes; retained older versions still derive.

    Rotation: ``ring.add(2, new_key)`` makes v2 current while v1 stays derivable for
    re-encoding; ``ring.retire(1)`` then drops v1's material for good, and any later request
    for v1 raises :class:`RetiredKeyVersionError`. The ring is immutable: both return a new ring.

    Record tokens are not rotated with the linkage keys: they are every record's name in link
    and access (link's results, its ALFs, which are keyed by the spine person's record token,
    access's research store and every extract), so they stay derived under one version,
    ``record_token_version`` (default: the ring's first version, held or retired). A
    rotation re-encodes the linkage keys under the new version and keeps each record's name;
    the record-token version can therefore never be retired.
    """

    keys: Mapping[int, MasterKey]
    current_version: int
    retired: frozenset[int] = frozenset()
    record_token_version: int = 0  # 0: the first version the ring has known

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", dict(self.keys))
        object.__setattr__(self, "retired", frozenset(self.retired))
        for version in self.keys:
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ValueError("key versions are positive integers")
        if self.current_version not in self.keys:
            raise UnknownKeyVersionError(f"current key version {self.current_version} not in ring")
        if not self.record_token_version:
            object.__setattr__(self, "record_token_version", min([*self.keys, *self.retired]))
        if self.record_token_version not in self.keys:
            # Fail closed: a record token made under another version would name every
            # record anew, and link and access would hold each record twice.
            raise self._missing(self.record_token_version)
        overlap = self.retired & set(self.keys)
        if overlap:
            raise ValueError(f"versions {sorted(overlap)} are both held and retired")
        fingerprints = [key.fingerprint() for key in self.keys.values()]
        if len(set(fingerprints)) != len(fingerprints):
            raise KeyMaterialError("two key versions hold the same master key")

    def __repr__(self) -> str:
        return (
            f"KeyRing(current_version={self.current_version}, versions={self.versions}, "
            f"retired={sorted(self.retired)}, record_token_version={self.record_token_version})"
        )

    @classmethod
    def single(cls, key: MasterKey, version: int = 1) -> KeyRing:
        """A ring holding one key, current."""
        return cls({version: key}, current_version=version)

    @classmethod
    def from_files(
        cls,
        paths: Mapping[int, str | Path],
        current_version: int,
        retired: Iterable[int] = (),
        record_token_version: int = 0,
    ) -> KeyRing:
        """A ring from one key file per version (e.g. Kubernetes secret mounts)."""
        keys = {version: MasterKey.from_file(path) for version, path in paths.items()}
        return cls(
            keys,
            current_version=current_version,
            retired=frozenset(retired),
            record_token_version=record_token_version,
        )

    @property
    def versions(self) -> tuple[int, ...]:
        """Versions whose material is held, oldest first."""
        return tuple(sorted(self.keys))

    def add(self, version: int, key: MasterKey, *, make_current: bool = True) -> KeyRing:
        """A new ring with ``version`` added (and made current unless told otherwise)."""
        if version in self.keys or version in self.retired:
            raise ValueError(f"key version {version} was already used")
        if version <= max([*self.keys, *self.retired]):
            raise ValueError("new key versions must be higher than every earlier version")
        keys = {**self.keys, version: key}
        current = version if make_current else self.current_version
        return KeyRing(
            keys,
            current_version=current,
            retired=self.retired,
            record_token_version=self.record_token_version,
        )

    def retire(self, version: int) -> KeyRing:
        """A new ring without ``version``'s material; the current version cannot be retired."""
        if version == self.current_version:
            raise ValueError("cannot retire the current key version")
        if version not in self.keys:
            raise self._missing(version)
        if version == self.record_token_version:
            raise ValueError(f"key version {version} derives the record tokens: it stays held")
        keys = {v: k for v, k in self.keys.items() if v != version}
        return KeyRing(
            keys,
            current_version=self.current_version,
            retired=self.retired | {version},
            record_token_version=self.record_token_version,
        )

    def master(self, version: int | None = None) -> MasterKey:
        """The master key of ``version`` (default: current)."""
        version = self.current_version if version is None else version
        try:
            return self.keys[version]
        except KeyError:
            raise self._missing(version) from None

    def derive(self, purpose: str, version: int | None = None) -> DerivedKey:
        """The key for ``purpose`` under ``version`` (default: current)."""
        version = self.current_version if version is None else version
        return self.master(version).derive(purpose, version)

    def _missing(self, version: int) -> KeyVersionError:
        if version in self.retired:
            return RetiredKeyVersionError(f"key version {version} is retired")
        return UnknownKeyVersionError(f"key version {version} is not in the key ring")
