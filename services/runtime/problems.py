"""The one scheme of problem ``type`` URIs (RFC 9457) across fjo's APIs.

A problem's ``type`` names its kind for clients to branch on: ``https://fjo.invalid/problems/
<slug>``, the slug lowercase words joined by hyphens (``invalid-cursor``). ``fjo.invalid``
cannot resolve (RFC 2606), so no client mistakes the URI for a page to fetch. A route names
its refusal's own kind (``delivery-not-found``, ``project-not-active``); a problem no route
names (a framework's 404 or 405, a request that fails validation, an unhandled error) gets the
slug of its status (``status_problem_type``), so no fjo API answers ``about:blank``.
"""

from __future__ import annotations

import re

__all__ = ["PROBLEM_TYPE_BASE", "STATUS_SLUGS", "problem_type", "status_problem_type"]

PROBLEM_TYPE_BASE = "https://fjo.invalid/problems/"
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def problem_type(slug: str) -> str:
    """The ``type`` URI of the problem ``slug``; a slug outside the scheme is a bug."""
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"a problem slug is lowercase words joined by hyphens, not {slug!r}")
    return PROBLEM_TYPE_BASE + slug


STATUS_SLUGS: dict[int, str] = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "too-many-requests",
    500: "internal-error",
    502: "bad-gateway",
    503: "unavailable",
}
"""The slug of a problem that has no kind of its own beyond its status."""


def status_problem_type(status: int) -> str:
    """The ``type`` URI of a problem known only by its ``status``."""
    return problem_type(STATUS_SLUGS.get(status, f"status-{status}"))
