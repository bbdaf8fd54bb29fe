"""An Ed25519 audit signing key file for tests of the access service, unit and integration."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["signing_key_file"]


def signing_key_file(folder: Path) -> Path:
    """An Ed25519 audit signing key in ``folder`` (made once, then reused), as `fjo audit
    keygen` writes it and a secret mount holds it."""
    path = folder / "audit-signing.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    return path
