"""Anonymous linking fields: a keyed pseudonym of the spine person, stable for a key."""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["alf_for"]


def alf_for(key: bytes, spine_record_token: str) -> str:
    """The ALF of a spine person: HMAC-SHA256 under link's ALF key, unpadded base64url.

    The same spine person always gets the same ALF under one key; without the key an ALF
    cannot be recomputed from a record token (nor, a fortiori, from any identifier)."""
    mac = hmac.new(key, b"alf\x00" + spine_record_token.encode("ascii"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")
