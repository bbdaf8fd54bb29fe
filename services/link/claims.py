"""Claims on input partitions: which link replica may write a partition's records.

The bus hands a partition to a new consumer before the old one has noticed (the embedded
bus recomputes assignments at every poll; Kafka declares a slow member dead), so for a while
two replicas may think they own it. A claim closes that window: the new owner bumps the
partition's epoch, and every transaction that writes the partition's records first touches
its row with the epoch it holds. On PostgreSQL the touch row-locks it, so the new owner's
bump waits for the old owner's open transaction and everything it then reads includes that
transaction's work; a later transaction of the old owner finds another epoch and is refused
(:class:`LostClaim`). SQLite runs one writer at a time, which gives the same order.

A claim also carries how far the partition's records are decided: ``spine_position`` (every
spine change up to it has been applied to them) and ``model_position`` (every record has
been decided under the model of that position or a later one). A new owner picks up there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.link import storage as t

__all__ = ["Claim", "LostClaim", "advance", "claim", "hold", "lock_record", "owners"]


class LostClaim(Exception):
    """Another replica claimed the partition since this one did."""

    def __init__(self, partition: int, message: str) -> None:
        super().__init__(message)
        self.partition = partition


@dataclass(frozen=True, slots=True)
class Claim:
    """This replica's claim on one partition."""

    partition: int
    epoch: int
    spine_position: int
    model_position: int


def claim(session: Session, topic: str, partitions: Iterable[int], owner: str) -> dict[int, Claim]:
    """Take ``partitions`` over (in partition order, so two claimers never deadlock)."""
    c = t.partitions.c
    out: dict[int, Claim] = {}
    now = datetime.now(UTC)
    for p in sorted(set(partitions)):
        row = session.execute(
            update(t.partitions)
            .where(c.topic == topic, c.partition == p)
            .values(epoch=c.epoch + 1, owner=owner, updated_at=now)
            .returning(c.epoch, c.spine_position, c.model_position)
        ).first()
        if row is None:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(t.partitions).values(
                            topic=topic,
                            partition=p,
                            epoch=1,
                            owner=owner,
                            spine_position=0,
                            model_position=0,
                            updated_at=now,
                        )
                    )
                out[p] = Claim(p, 1, 0, 0)
                continue
            except IntegrityError:  # another replica inserted it at the same moment
                row = session.execute(
                    update(t.partitions)
                    .where(c.topic == topic, c.partition == p)
                    .values(epoch=c.epoch + 1, owner=owner, updated_at=now)
                    .returning(c.epoch, c.spine_position, c.model_position)
                ).one()
        out[p] = Claim(p, int(row[0]), int(row[1]), int(row[2]))
    return out


def hold(session: Session, topic: str, claims: Mapping[int, int]) -> None:
    """Touch each claimed partition's row with the epoch held (``partition -> epoch``), in
    partition order; :class:`LostClaim` if any was claimed by another replica since."""
    c = t.partitions.c
    now = datetime.now(UTC)
    for p in sorted(claims):
        touched = session.execute(
            update(t.partitions)
            .where(c.topic == topic, c.partition == p, c.epoch == claims[p])
            .values(updated_at=now)
        ).rowcount
        if touched != 1:
            raise LostClaim(p, f"partition {p} of {topic} was claimed by another replica")


def lock_record(session: Session, topic: str, record_token: str) -> None:
    """Wait for, and hold until the transaction ends, the claim row of the partition a
    record's keys arrive on: a writer that is not the partition's owner (the review API)
    so takes its turn with the owner's runs instead of racing them."""
    c, k = t.partitions.c, t.incoming_keys.c
    partition = session.execute(select(k.partition).where(k.record_token == record_token)).scalar()
    if partition is None:
        return
    session.execute(
        update(t.partitions)
        .where(c.topic == topic, c.partition == partition)
        .values(updated_at=c.updated_at)
    )


def advance(
    session: Session,
    topic: str,
    partition: int,
    epoch: int,
    *,
    spine_position: int | None = None,
    model_position: int | None = None,
) -> None:
    """Record how far a partition's records are decided (only under the epoch held)."""
    c = t.partitions.c
    values: dict[str, object] = {"updated_at": datetime.now(UTC)}
    if spine_position is not None:
        values["spine_position"] = spine_position
    if model_position is not None:
        values["model_position"] = model_position
    touched = session.execute(
        update(t.partitions)
        .where(c.topic == topic, c.partition == partition, c.epoch == epoch)
        .values(values)
    ).rowcount
    if touched != 1:
        raise LostClaim(
            partition, f"partition {partition} of {topic} was claimed by another replica"
        )


def owners(session: Session, topic: str) -> dict[int, str]:
    """Who holds each partition's latest claim (operators' view, tests)."""
    c = t.partitions.c
    return {
        int(p): str(o)
        for p, o in session.execute(select(c.partition, c.owner).where(c.topic == topic))
    }
