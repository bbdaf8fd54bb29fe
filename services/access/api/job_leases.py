"""Who runs each unfinished job, and for how long that holds: a lease per job, renewed by its
owner's heartbeat.

A job is owned from its submission by the replica that will run it (its background task
lives in that process alone). Every ``lease_s / 3`` the owner's ``LeaseKeeper`` renews the
lease of every queued or running job it owns, then fails any job whose lease has expired:
its owner died (or lost the database for longer than a lease). So a restarted replica no
longer fails jobs that another live replica is running, and a dead replica's jobs end
``interrupted`` within a lease even if nothing restarts. Failing is done by a conditional
UPDATE, so that of two replicas sweeping at once exactly one fails and audits each job.

Expired jobs are failed rather than re-queued: a re-run would start a second copy of a
script while the first may still be writing the same output folder (a Kubernetes Job
outlives the replica that created it until it is deleted), and the researcher resubmits
in one call. The replicas' clocks must agree to well within a lease (NTP does).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from services.access.bootstrap import AccessContext
from services.access.domain.jobs import JobState
from services.access.storage.models import JobRow
from services.runtime.db import transaction

__all__ = ["LeaseKeeper", "fail_expired_jobs", "lease_until", "renew_leases"]

_log = logging.getLogger("fjo.access.jobs")
_UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value)


def lease_until(ctx: AccessContext) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=ctx.settings.job_runner.lease_s)


def renew_leases(ctx: AccessContext) -> int:
    """Renew this replica's lease on every unfinished job it owns; returns how many."""
    with transaction(ctx.sessions) as s:
        done = s.execute(
            update(JobRow)
            .where(JobRow.owner == ctx.replica, JobRow.state.in_(_UNFINISHED))
            .values(lease_until=lease_until(ctx))
        )
        return int(getattr(done, "rowcount", 0) or 0)


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(
        JobRow.state.in_(_UNFINISHED),
        or_(JobRow.lease_until.is_(None), JobRow.lease_until < now),
    )


def fail_expired_jobs(ctx: AccessContext) -> list[str]:
    """Fail every unfinished job whose owner's lease has expired (audited once each, by
    whichever replica's UPDATE matched it), stop what is left of it; their ids."""
    now = datetime.now(UTC)
    with ctx.sessions() as s:
        candidates = list(s.execute(select(JobRow.id).where(_expired(now))).scalars())
    failed: list[str] = []
    for job_id in candidates:
        with transaction(ctx.sessions) as s:
            done = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, _expired(now))
                .values(
                    state=JobState.FAILED.value,
                    reason="interrupted",
                    detail="its replica stopped before it finished; submit it again",
                    finished_at=now,
                    owner=None,
                    lease_until=None,
                )
            )
            if getattr(done, "rowcount", 0) != 1:
                continue  # finished, renewed or failed by another replica meanwhile
            row = s.get(JobRow, job_id)
            assert row is not None
            ctx.audit.append(
                s,
                actor=None,
                action="workspace.job.finish",
                outcome="failed",
                object_type="job",
                object_id=job_id,
                project_id=row.project_id,
                detail={"reason": "interrupted", "runner": row.runner},
            )
        failed.append(job_id)
        ctx.runner.abandon(job_id)
    return failed


class LeaseKeeper:
    """The replica's heartbeat: renew its leases, fail expired ones, every third of a lease."""

    def __init__(self, ctx: AccessContext) -> None:
        self._ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fjo-job-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        period = self._ctx.settings.job_runner.lease_s / 3
        while not self._stop.wait(period):
            try:
                renew_leases(self._ctx)
                fail_expired_jobs(self._ctx)
            except Exception as exc:  # the database away for a beat: try at the next one
                _log.warning("job leases not renewed", extra={"error_type": type(exc).__name__})
