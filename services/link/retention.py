"""Retention of link's own tables (``fjo retention run --service link``).

Decided possible matches go ``review_decided_days`` after their decision, link's audit rows
after ``audit_days``. The linkage itself (spine, incoming keys, results, spine log and
history), the model history and the processed-message markers stay: the markers' topic is
compacted, so any of its records can be read again. An erased spine person's encodings are not
a matter of age: the service removes them (``LinkService.forget_erasures``, snapshots).
"""

from __future__ import annotations

from datetime import datetime

from services.link import storage as t
from services.link.config import LinkSettings
from services.runtime.retention import TableRule, purge_service

__all__ = ["OPEN", "retention_rules", "run_retention"]

OPEN = "open"
"""A possible match still waiting for a reviewer: never deleted by age."""


def retention_rules(settings: LinkSettings) -> list[TableRule]:
    """What link deletes by age, from its settings."""
    reviews = t.review_queue
    # No markers rule: link's input is compacted (tests/integration/test_table_retention.py
    # holds the registry to it); a topic kept by age would give them a period (marker_rules).
    return [
        TableRule(
            "link_review_queue",
            reviews,
            reviews.c.decided_at,
            settings.retention.review_decided_days,
            where=(reviews.c.state != OPEN, reviews.c.decided_at.is_not(None)),
        ),
        TableRule("link_audit", t.audit, t.audit.c.at, settings.retention.audit_days),
    ]


def run_retention(settings: LinkSettings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete what is past its period; the rows deleted per table."""
    return purge_service(settings, lambda: retention_rules(settings), now=now)
