"""Which projects an opt-out applies to, and what an objection's kinds take out: pure rules.

The national data opt-out applies to confidential patient information used for research and
planning, except where the person consented: a project whose legal basis is consent (UK GDPR
Article 6(1)(a) or 9(2)(a), or "consent" in its words) keeps an opted-out person; every
other project (public task, legitimate interests, Section 251 support...) leaves them out.
A project with no legal basis recorded is treated as needing opt-outs applied: the safe side.
"""

from __future__ import annotations

import re

__all__ = ["REMOVING_KINDS", "excluding_kinds", "opt_outs_apply"]

REMOVING_KINDS = frozenset({"objection", "erasure"})
"""Kinds that take a record or person out of the research store and every extract."""

_CONSENT = re.compile(
    r"\bconsent|\b6\s*\(\s*1\s*\)\s*\(\s*a\s*\)|\b9\s*\(\s*2\s*\)\s*\(\s*a\s*\)", re.I
)


def opt_outs_apply(legal_basis: str | None) -> bool:
    """Whether opt-outs apply to a project with this legal basis (see the module's note)."""
    return not (legal_basis and _CONSENT.search(legal_basis))


def excluding_kinds(legal_basis: str | None) -> frozenset[str]:
    """The exclusion kinds an extract of a project with this legal basis leaves out."""
    return REMOVING_KINDS | ({"opt-out"} if opt_outs_apply(legal_basis) else frozenset())
