"""Envelope encryption of the identifiers pseudonymise keeps for re-encoding (the vault).

Each sealed item gets a fresh 256-bit data key; the identifiers are encrypted under it with
AES-256-GCM, the item's name (record token, version, input event id) bound as associated
data, so a ciphertext moved to another row does not open. The data key is itself wrapped
(AES-256-GCM again, same associated data) by a key-encryption key (KEK) that lives only in a
mounted secret file and is named by a KEK id. Rotating the KEK re-wraps the data keys and
never touches a payload; erasing an item deletes its wrapped data key, after which the
ciphertext cannot be opened by anyone (crypto-shredding).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.pseudonymise.domain.keys import MasterKey

__all__ = ["KeyEncryptionKey", "Sealed", "VaultError", "open_sealed", "rewrap", "seal"]

_NONCE_BYTES = 12
_WRAP_LABEL = b"fjo/pseudonymise/vault/data-key\x00"
_DATA_LABEL = b"fjo/pseudonymise/vault/identifiers\x00"


class VaultError(ValueError):
    """A sealed item cannot be opened: unknown KEK, wrong item, or tampered bytes."""


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """A KEK: 32 bytes derived (HKDF-SHA256) from a secret file's random material, never
    printed; ``kek_id`` names it in every row it wraps."""

    kek_id: str
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.kek_id or len(self.kek_id) > 32:
            raise ValueError("a KEK id is 1-32 characters")
        if len(self.material) != 32:
            raise ValueError("a KEK is 32 bytes")

    @classmethod
    def from_material(cls, kek_id: str, material: bytes) -> KeyEncryptionKey:
        """A KEK from at least 32 random bytes (placeholders refused, as for master keys)."""
        checked = MasterKey(material).material
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"fjo/pseudonymise/vault/kek-salt/v1",
            info=f"fjo/pseudonymise/vault/kek/{kek_id}".encode(),
        )
        return cls(kek_id, hkdf.derive(checked))

    @classmethod
    def from_file(cls, kek_id: str, path: str | Path) -> KeyEncryptionKey:
        """A KEK from a key file (raw bytes, hex or base64 text, as a master key file)."""
        return cls.from_material(kek_id, MasterKey.from_file(path).material)

    @classmethod
    def generate(cls, kek_id: str) -> KeyEncryptionKey:
        return cls.from_material(kek_id, secrets.token_bytes(32))


@dataclass(frozen=True, slots=True)
class Sealed:
    """One sealed item as stored: the KEK that wraps its data key, the wrapped data key
    (nonce + ciphertext + tag) and the payload (nonce + ciphertext + tag)."""

    kek_id: str
    wrapped_key: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise VaultError("sealed item does not open (wrong item, KEK or tampered)") from None


def seal(kek: KeyEncryptionKey, plaintext: bytes, *, aad: bytes) -> Sealed:
    """``plaintext`` under a fresh data key, the data key wrapped by ``kek``."""
    data_key = AESGCM.generate_key(bit_length=256)
    return Sealed(
        kek_id=kek.kek_id,
        wrapped_key=_encrypt(kek.material, data_key, _WRAP_LABEL + aad),
        ciphertext=_encrypt(data_key, plaintext, _DATA_LABEL + aad),
    )


def _unwrap(keks: Mapping[str, KeyEncryptionKey], sealed: Sealed, aad: bytes) -> bytes:
    kek = keks.get(sealed.kek_id)
    if kek is None:
        raise VaultError(f"KEK {sealed.kek_id!r} is not loaded")
    return _decrypt(kek.material, sealed.wrapped_key, _WRAP_LABEL + aad)


def open_sealed(keks: Mapping[str, KeyEncryptionKey], sealed: Sealed, *, aad: bytes) -> bytes:
    """The plaintext of ``sealed`` (its KEK must be among ``keks``)."""
    return _decrypt(_unwrap(keks, sealed, aad), sealed.ciphertext, _DATA_LABEL + aad)


def rewrap(
    keks: Mapping[str, KeyEncryptionKey], sealed: Sealed, to: KeyEncryptionKey, *, aad: bytes
) -> Sealed:
    """``sealed`` with its data key wrapped by ``to``: the payload's bytes are unchanged."""
    if sealed.kek_id == to.kek_id:
        return sealed
    data_key = _unwrap(keks, sealed, aad)
    return Sealed(to.kek_id, _encrypt(to.material, data_key, _WRAP_LABEL + aad), sealed.ciphertext)
