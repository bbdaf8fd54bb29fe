"""Retention of ingest's own tables (``fjo retention run --service ingest``).

Delivery receipts go once their period has passed since their last change, with their
per-record errors. The accepted-record index stays: it is what makes a re-sent record a
duplicate for as long as the record exists (an erasure removes a record's keys).
"""

from __future__ import annotations

from datetime import datetime

from services.ingest.config import IngestSettings
from services.ingest.storage.models import Base, Delivery, DeliveryError
from services.runtime.retention import TableRule, purge_service

__all__ = ["retention_rules", "run_retention"]


def retention_rules(settings: IngestSettings) -> list[TableRule]:
    """What ingest deletes by age, from its settings."""
    deliveries = Base.metadata.tables[Delivery.__tablename__]
    errors = Base.metadata.tables[DeliveryError.__tablename__]
    return [
        TableRule(
            "ingest_deliveries",
            deliveries,
            deliveries.c.updated_at,
            settings.retention.deliveries_days,
            # Any status: a delivery still `processing` a year after its last progress was
            # abandoned long ago (``stale_after_s``).
            dependents=(errors.c.delivery_id,),
        )
    ]


def run_retention(settings: IngestSettings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete what is past its period; the rows deleted per table."""
    return purge_service(settings, lambda: retention_rules(settings), now=now)
