"""The one scheme of problem ``type`` URIs (RFC 9457) across fjo's APIs.

A problem's ``type`` names its kind for clients to branch on: ``https://fjo.invalid/problems/
<slug>``, the slug lowercase words joined by hyphens (``invalid-cursor``). ``fjo.invalid``
cannot resolve (RFC 2606), so no client mistakes the URI for a page to fetch. Ingest uses it;
an API not yet moved over answers ``about:blank`` (RFC 9457's "no more than the status").
"""

from __future__ import annotations

import re

__all__ = ["PROBLEM_TYPE_BASE", "problem_type"]

PROBLEM_TYPE_BASE = "https://fjo.invalid/problems/"
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def problem_type(slug: str) -> str:
    """The ``type`` URI of the problem ``slug``; a slug outside the scheme is a bug."""
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"a problem slug is lowercase words joined by hyphens, not {slug!r}")
    return PROBLEM_TYPE_BASE + slug
