"""Retention of pseudonymise's own tables (``fjo retention run --service pseudonymise``).

Processed-message markers go after ``markers_days`` (never sooner than a record can be
redelivered or replayed: ``services.runtime.retention.marker_rules``), re-encode progress
rows after ``reencode_progress_days``. The identifier vault is never deleted by age: it is
the only source for re-encoding after a key rotation, and leaves only with an erasure. The
erasure register (``services.pseudonymise.erasures``) is never deleted either: it is the
proof that each objection and erasure was honoured, and what keeps a re-sent record out.
"""

from __future__ import annotations

from datetime import datetime

from contracts.services import Service
from contracts.topics import dead_letter_topic, topic, topics_consumed_by
from services.pseudonymise.config import PseudonymiseSettings
from services.pseudonymise.vault import progress
from services.runtime.delivery import processed_messages
from services.runtime.retention import TableRule, marker_rules, purge_service

__all__ = ["retention_rules", "run_retention"]


def retention_rules(settings: PseudonymiseSettings) -> list[TableRule]:
    """What pseudonymise deletes by age, from its settings; ``RetentionRefused`` if the
    markers' period is shorter than their topics need."""
    return [
        *marker_rules(
            processed_messages,
            group=settings.worker_group,
            consumed=topics_consumed_by(Service.PSEUDONYMISE),
            dead_letters=topic(dead_letter_topic(Service.PSEUDONYMISE)),
            days=settings.retention.markers_days,
        ),
        TableRule(
            "pseudonymise_reencode_progress",
            progress,
            progress.c.updated_at,
            settings.retention.reencode_progress_days,
        ),
    ]


def run_retention(settings: PseudonymiseSettings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete what is past its period; the rows deleted per table."""
    return purge_service(settings, lambda: retention_rules(settings), now=now)
