"""Project-specific pseudonyms (SAIL's ALF_E, SYSTEM_ID_E, ..._CD_E) as keyed HMAC.

Each project gets its own key, derived from one master secret with HKDF (info names the
project and the purpose), and each kind of identifier gets its own sub-key, so an ALF and a
record token never collide and two projects' pseudonyms of the same person differ: nobody
holding two extracts can join them on a pseudonym. Within a project the mapping is stable,
so the same person keeps the same ALF_E across every extract of that project.

Pseudonyms are half of that promise; the other half is the content. Exact dates and match
probabilities would pair two extracts' rows without any pseudonym, so the extract builder
gives dates at the approved precision, bands the probability (``generalisation``) and makes
every row's content shared by several rows (``kanonymity.protect_table``): see
docs/access.md, "Two projects' extracts cannot be joined on their content either".
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ProjectPseudonymiser", "PseudonymKind", "derive_project_key"]

_KEY_BYTES = 32
_PSEUDONYM_HEX = 32  # 128 bits: collision-free at population scale, short enough to read


class PseudonymKind(StrEnum):
    """What is being pseudonymised; each kind has its own sub-key."""

    ALF = "alf"
    RECORD = "record"
    ORGANISATION = "organisation"


def derive_project_key(master_secret: bytes, project_id: str, *, key_version: int = 1) -> bytes:
    """The project's key: HKDF-SHA256 of the master secret, bound to project and version."""
    if len(master_secret) < 16:
        raise ValueError("the pseudonym master secret must be at least 16 bytes")
    info = f"fjo.access.project-pseudonym.v{key_version}|{project_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(
        master_secret
    )


class ProjectPseudonymiser:
    """Maps identifiers to one project's pseudonyms; caches, since people recur in extracts."""

    def __init__(self, master_secret: bytes, project_id: str, *, key_version: int = 1) -> None:
        project_key = derive_project_key(master_secret, project_id, key_version=key_version)
        self._keys = {
            kind: hmac.new(project_key, f"kind|{kind.value}".encode(), hashlib.sha256).digest()
            for kind in PseudonymKind
        }
        self._cache: dict[tuple[PseudonymKind, str], str] = {}

    def pseudonym(self, kind: PseudonymKind, value: str | None) -> str | None:
        """The project pseudonym of ``value`` (None stays None: unlinked stays unlinked)."""
        if value is None:
            return None
        cached = self._cache.get((kind, value))
        if cached is not None:
            return cached
        digest = hmac.new(self._keys[kind], value.encode(), hashlib.sha256).hexdigest()
        result = digest[:_PSEUDONYM_HEX]
        if len(self._cache) < 5_000_000:
            self._cache[(kind, value)] = result
        return result
