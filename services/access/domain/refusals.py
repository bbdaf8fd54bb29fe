"""Refused requests, counted per source and window instead of one audit entry each.

An unauthenticated caller (or an authenticated one walking other projects' ids) could make
the audit trail grow, and the service sign, without limit. Per source (the client's address,
or the subject of a valid token) and fixed window, the first ``burst`` refusals are audited
in full as before; the rest are counted, with their reasons, and one summary entry records
the window when it closes: how many, first and last seen, why. Past ``max_sources`` sources
in one window, new ones share the source ``*``, so neither the number of entries nor the
counting state grows with the attacker's addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["OTHER_SOURCES", "RefusalWindow", "reason_key", "window_start"]

OTHER_SOURCES = "*"
_MAX_REASONS = 50
_MAX_REASON_TEXT = 120
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_start(at: datetime, length_s: int) -> datetime:
    """The start of the fixed window of ``length_s`` seconds that ``at`` falls in."""
    elapsed = int((at - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % length_s)


def reason_key(action: str, reason: str) -> str:
    """How a refusal is counted: the action refused and why (a status, or auth's reason)."""
    return f"{action}: {reason}"[:_MAX_REASON_TEXT]


@dataclass(slots=True)
class RefusalWindow:
    """One source's refusals in one window."""

    source: str
    start: datetime
    first_seen: datetime
    last_seen: datetime
    refused: int = 0
    in_full: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, at: datetime, reason: str, *, burst: int) -> bool:
        """Count one refusal; True when it is to be audited in full (the first ``burst``)."""
        self.refused += 1
        self.first_seen = min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        key = reason if reason in self.reasons or len(self.reasons) < _MAX_REASONS else "other"
        self.reasons[key] = self.reasons.get(key, 0) + 1
        if self.in_full < burst:
            self.in_full += 1
            return True
        return False

    @property
    def needs_summary(self) -> bool:
        """Whether some refusals were only counted (else the full entries say it all)."""
        return self.refused > self.in_full

    def summary(self, length_s: int) -> dict[str, Any]:
        """The detail of the window's audit entry: counts and times, never a request's input."""
        return {
            "source": self.source,
            "window_start": self.start.isoformat(),
            "window_s": length_s,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "refused": self.refused,
            "in_full": self.in_full,
            "reasons": dict(sorted(self.reasons.items())),
        }
