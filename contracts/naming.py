"""Names of event types and topics: ``<domain>.<event>.v<N>``, kebab-case parts, N from 1."""

from __future__ import annotations

import re

__all__ = ["VERSIONED_NAME_PATTERN", "split_versioned_name"]

VERSIONED_NAME_PATTERN = (
    r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.v[1-9][0-9]*$"
)
_VERSIONED_NAME = re.compile(VERSIONED_NAME_PATTERN)


def split_versioned_name(name: str) -> tuple[str, int]:
    """``"ingest.child-received.v1"`` -> ``("ingest.child-received", 1)``; ValueError otherwise."""
    if not _VERSIONED_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not named <domain>.<event>.v<N>")
    family, _, version = name.rpartition(".v")
    return family, int(version)
