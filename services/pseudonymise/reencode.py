"""Re-encode every person in the vault under a new key version, so link re-links them.

After a rotation (a new master key version added to the ring) nothing upstream can be
replayed once ``ingest.records.v1``'s retention has passed; the vault holds what is needed.
Each person record's identifier fields are opened, split again under ``key_version`` and
published as ``pseudonymise.linkage-keys.v1`` events with new event ids (derived from the
input event id and the key version, so a rerun publishes the same ids and link applies each
once) and the same record token (record tokens are not rotated).

Other records go first, then spine people, every version of each in order: link keeps a
record's decision when only its encoding changed and decides it again when the spine
people it can meet are re-encoded too (docs/operators.md, "Key management and rotation").

Resumable: progress per (key version, shard, phase) is committed after each page has been
published and flushed; a rerun resumes after the last token. Sharded: ``shard``/``shards``
split the records by a hash of their token, so N jobs share the work.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contracts.records import RecordType, SourceAgency
from services.pseudonymise.domain import Pseudonymiser
from services.pseudonymise.events import linkage_message
from services.pseudonymise.roles import roles_for
from services.pseudonymise.vault import Vault, identifier_fields, progress
from services.runtime.bus.api import Producer
from services.runtime.db import insert_for
from services.runtime.publishing import publish_all

__all__ = ["PHASES", "ReencodeResult", "reencode"]

log = logging.getLogger("fjo.pseudonymise.reencode")

PHASES = ("records", "spine")


@dataclass(frozen=True, slots=True)
class ReencodeResult:
    key_version: int
    published: dict[str, int]  # per phase, this run and earlier runs


def _shard_of(token: str, shards: int) -> int:
    return zlib.crc32(token.encode("ascii")) % shards


def _resume(session: Session, key_version: int, shard: str, phase: str) -> tuple[str, int]:
    c = progress.c
    row = session.execute(
        select(c.last_token, c.done).where(
            c.key_version == key_version, c.shard == shard, c.phase == phase
        )
    ).first()
    return ("", 0) if row is None else (row.last_token, int(row.done))


def _save(
    session: Session, key_version: int, shard: str, phase: str, token: str, done: int
) -> None:
    values = {"last_token": token, "done": done, "updated_at": datetime.now(UTC)}
    session.execute(
        insert_for(session, progress)
        .values(key_version=key_version, shard=shard, phase=phase, **values)
        .on_conflict_do_update(index_elements=["key_version", "shard", "phase"], set_=values)
    )


def reencode(
    sessions: sessionmaker[Session],
    vault: Vault,
    pseudonymiser: Pseudonymiser,
    producer: Producer,
    *,
    shard: int = 0,
    shards: int = 1,
    page: int = 500,
    on_progress: Callable[[str, int], None] | None = None,
) -> ReencodeResult:
    """Publish every vaulted person's linkage keys under ``pseudonymiser.key_version``."""
    if not 0 <= shard < shards:
        raise ValueError("shard must be in 0..shards-1")
    version, name = pseudonymiser.key_version, f"{shard}/{shards}"
    published: dict[str, int] = {}
    for phase in PHASES:
        with sessions() as session:
            after, done = _resume(session, version, name, phase)
        while True:
            with sessions() as session:
                rows = Vault.rows(session, spine=phase == "spine", after=after, limit=page)
            if not rows:
                break
            messages = []
            for entry in vault.entries(
                [r for r in rows if _shard_of(r["record_token"], shards) == shard]
            ):
                kind = RecordType(entry.record_type)
                fields, roles = identifier_fields(entry.fields, roles_for(kind))
                split = pseudonymiser.split(
                    fields, source=entry.source, record_kind=kind.value, roles=roles
                )
                if split.record_token != entry.record_token:
                    # The ring's record-token version differs from the one this row was
                    # named under: publishing would make every record a new one.
                    raise ValueError("record tokens changed: check record_token_key_version")
                messages.append(
                    linkage_message(
                        split,
                        record_type=kind,
                        source=SourceAgency(entry.source),
                        record_version=entry.record_version,
                        input_event_id=entry.input_event_id,
                        delivery_id=entry.delivery_id,
                    )
                )
            publish_all(producer, messages)
            producer.flush()
            done += len(messages)
            after = rows[-1]["record_token"]
            with sessions.begin() as session:
                _save(session, version, name, phase, after, done)
            if on_progress is not None:
                on_progress(phase, done)
        published[phase] = done
        log.info(
            "re-encode phase done",
            extra={"key_version": version, "shard": name, "phase": phase, "published": done},
        )
    return ReencodeResult(version, published)
