"""What a worker's probe server answers on ``GET /status``: how far behind its group is and
what it dead-lettered, for the operator's status page.

Nothing here names a record: topics, partitions, offsets, counts and error types only.

- ``lag``: the bus's own account of the group (``Bus.consumer_lag``: end offset minus
  committed offset, per partition), the same whichever replica answers.
- ``dead_letters.by_topic``: the group's ``processed_messages`` markers whose outcome is
  ``dead_lettered``, by the topic the record came from. Markers are durable and shared by
  every replica, so the count survives restarts and is the group's, not the process's.
- ``dead_letters.by_reason``: the same markers by the error type that dead-lettered them
  (the marker keeps it, as the dead letter's ``fjo-dlq-error-type`` header does): durable and
  the group's too, so the two breakdowns add up to the same total at any replica.
- ``suppressed``: markers of records settled on purpose without effect (pseudonymise's
  records re-sent after their erasure), by reason; durable and the group's as well. What the
  group was handed = processed + dead-lettered + suppressed.
"""

from __future__ import annotations

from typing import Any

from services.runtime.delivery import Worker

__all__ = ["worker_status"]


def worker_status(worker: Worker) -> dict[str, Any]:
    """The JSON body of the worker's ``/status``."""
    lags = worker.bus.consumer_lag(worker.group_id, worker.topics)
    by_topic = worker.dead_lettered_by_topic()
    suppressed = worker.suppressed_by_reason()
    return {
        "group": worker.group_id,
        "topics": sorted(worker.topics),
        "lag": {
            "total": sum(lag.lag for lag in lags),
            "partitions": [
                {
                    "topic": lag.topic,
                    "partition": lag.partition,
                    "committed": lag.committed,
                    "end": lag.end,
                    "lag": lag.lag,
                }
                for lag in lags
            ],
        },
        "dead_letters": {
            "dead_letter_topic": worker.config.dead_letter_topic,
            "total": sum(by_topic.values()),
            "by_topic": by_topic,
            "by_reason": worker.dead_lettered_by_reason(),
        },
        "suppressed": {"total": sum(suppressed.values()), "by_reason": suppressed},
    }
