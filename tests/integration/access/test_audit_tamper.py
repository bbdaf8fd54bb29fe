"""The audit trail cannot be wiped, cut short or rewritten and still verify (issue 11, finding 4).

The attacker holds the access database as its owner (the tester worked on a copy of it): they
switch the append-only triggers off, then change it in every way the issue lists: modify,
insert, delete in the middle, delete the tail with and without its checkpoints and the head,
wipe, reorder, recompute with the publicly known development key. They do not hold the
service's private key, nor the checkpoints exported to storage outside the database. Every
attempt must be refused by the operator's verification (the service's key) and by a third
party's (the public key alone), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from services.access.bootstrap import AccessContext, build_context
from services.access.config import AccessSettings
from services.access.domain.audit import (
    GENESIS,
    AuditEntry,
    AuditSigner,
    Checkpoint,
    dev_signing_key,
    entry_hash,
)
from services.runtime.db import transaction
from tests.integration.access.conftest import settings_for

ENTRIES = 12  # the genesis entry and eleven more, each in its own transaction


@dataclass
class Trail:
    ctx: AccessContext
    exported: list[Checkpoint]  # what `fjo audit export-checkpoints` shipped out

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    def sql(self, statement: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)

    def value(self, statement: str, **params: object) -> object:
        with self.engine.connect() as conn:
            return conn.execute(text(statement), params).scalar_one()

    def switch_triggers_off(self) -> None:
        """What the tables' owner can do (and the service's role on PostgreSQL cannot)."""
        tables = ("access_audit_log", "access_audit_head", "access_audit_checkpoints")
        if self.engine.dialect.name == "postgresql":
            for table in tables:
                self.sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            return
        with self.engine.connect() as conn:
            names = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).scalars()
            found = list(names)
        for name in found:
            self.sql(f"DROP TRIGGER {name}")

    def problems(self, *, exported: bool = True, public_key_only: bool = False) -> list[str]:
        audit = self.ctx.audit
        if public_key_only:  # a third party: the database copy, the public key, the export
            settings = self.ctx.settings.model_copy(update={"migrate_on_start": False})
            other = build_context(settings, public_key=audit.public_key)
            try:
                result = other.audit.verify(other.engine, exported=self.exported)
            finally:
                other.dispose()
        else:
            result = audit.verify(self.engine, exported=self.exported if exported else ())
        assert result.ok == (not result.problems)
        return result.problems


@pytest.fixture
def trail(db_url: str, tmp_path: Path) -> Iterator[Trail]:
    context = build_context(settings_for(db_url, tmp_path))
    context.audit.open(context.sessions)
    for i in range(ENTRIES - 1):
        with transaction(context.sessions) as s:
            context.audit.append(
                s,
                actor="alice",
                action="extract.download",
                object_type="extract",
                object_id=f"e{i}",
                project_id="p1",
                detail={"file": "CHILD.csv", "n": i},
            )
    t = Trail(context, exported=context.audit.stored_checkpoints())
    t.switch_triggers_off()
    yield t
    context.dispose()


# ---------------------------------------------------------------------------------- attacks


def _rows(t: Trail) -> list[AuditEntry]:
    with t.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM access_audit_log ORDER BY seq")).mappings()
        from datetime import datetime

        return [
            AuditEntry(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                actor=r["actor"],
                action=r["action"],
                outcome=r["outcome"],
                object_type=r["object_type"],
                object_id=r["object_id"],
                project_id=r["project_id"],
                detail=json.loads(r["detail"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
                signature=r["signature"],
            )
            for r in rows
        ]


def _rewrite(t: Trail, entries: list[AuditEntry], signer: AuditSigner | None) -> None:
    """Replace the log by ``entries`` re-chained (and re-signed, when given a key), the head
    and the stored checkpoints to match: a trail consistent in itself."""
    t.sql("DELETE FROM access_audit_log")
    t.sql("DELETE FROM access_audit_checkpoints")
    prev = GENESIS
    for seq, e in enumerate(entries, start=1):
        e = dataclasses.replace(e, seq=seq, prev_hash=prev)
        digest = entry_hash(e)
        signature = signer.sign_entry(digest) if signer else e.signature
        t.sql(
            "INSERT INTO access_audit_log (seq, at, actor, action, outcome, object_type,"
            " object_id, project_id, detail, prev_hash, hash, signature) VALUES (:seq, :at,"
            " :actor, :action, :outcome, :ot, :oid, :pid, :detail, :prev, :hash, :sig)",
            seq=seq,
            at=e.at.isoformat(timespec="microseconds"),
            actor=e.actor,
            action=e.action,
            outcome=e.outcome,
            ot=e.object_type,
            oid=e.object_id,
            pid=e.project_id,
            detail=json.dumps(dict(e.detail), sort_keys=True),
            prev=prev,
            hash=digest,
            sig=signature,
        )
        if signer:
            cp = Checkpoint(seq, digest, e.at)
            t.sql(
                "INSERT INTO access_audit_checkpoints (seq, entry_hash, at, signature)"
                " VALUES (:seq, :h, :at, :sig)",
                seq=seq,
                h=digest,
                at=e.at.isoformat(timespec="microseconds"),
                sig=signer.sign_checkpoint(cp),
            )
        prev = digest
    t.sql("UPDATE access_audit_head SET seq = :seq, hash = :h", seq=len(entries), h=prev)


def _head_back_to(t: Trail, seq: int) -> None:
    h = t.value("SELECT hash FROM access_audit_log WHERE seq = :s", s=seq) if seq else GENESIS
    t.sql("UPDATE access_audit_head SET seq = :seq, hash = :h", seq=seq, h=h)


def modify_a_row(t: Trail) -> None:
    t.sql("UPDATE access_audit_log SET actor = 'mallory' WHERE seq = 4")


def modify_a_detail(t: Trail) -> None:
    t.sql("UPDATE access_audit_log SET detail = :d WHERE seq = 7", d='{"file": "CASE.csv", "n": 5}')


def modify_a_row_and_recompute_its_hash(t: Trail) -> None:
    rows = _rows(t)
    e = dataclasses.replace(rows[3], actor="mallory")
    t.sql("UPDATE access_audit_log SET actor = 'mallory', hash = :h WHERE seq = 4", h=entry_hash(e))


def modify_a_row_and_recompute_the_chain_and_head(t: Trail) -> None:
    rows = _rows(t)
    rows[3] = dataclasses.replace(rows[3], actor="mallory")
    _rewrite(t, rows, signer=None)  # the hashes anyone can compute; the old signatures


def insert_a_row_in_the_middle(t: Trail) -> None:
    rows = _rows(t)
    forged = dataclasses.replace(rows[5], action="project.approve", actor="root")
    _rewrite(t, [*rows[:5], forged, *rows[5:]], signer=None)


def insert_a_row_at_the_tail(t: Trail) -> None:
    rows = _rows(t)
    forged = dataclasses.replace(rows[-1], action="researcher.accreditation", actor="root")
    _rewrite(t, [*rows, forged], signer=None)


def delete_a_middle_row(t: Trail) -> None:
    t.sql("DELETE FROM access_audit_log WHERE seq = 5")


def delete_a_middle_row_and_rechain(t: Trail) -> None:
    rows = _rows(t)
    _rewrite(t, [*rows[:4], *rows[5:]], signer=None)


def delete_the_tail(t: Trail) -> None:
    t.sql("DELETE FROM access_audit_log WHERE seq > 9")


def delete_the_tail_and_the_head(t: Trail) -> None:
    delete_the_tail(t)
    _head_back_to(t, 9)


def delete_the_tail_and_its_checkpoints(t: Trail) -> None:
    delete_the_tail(t)
    t.sql("DELETE FROM access_audit_checkpoints WHERE seq > 9")


def delete_the_tail_its_checkpoints_and_the_head(t: Trail) -> None:
    delete_the_tail_and_its_checkpoints(t)
    _head_back_to(t, 9)


def delete_the_tail_checkpoints_only(t: Trail) -> None:
    t.sql("DELETE FROM access_audit_checkpoints WHERE seq > 9")


def delete_every_checkpoint(t: Trail) -> None:
    t.sql("DELETE FROM access_audit_checkpoints")


def wind_the_head_back(t: Trail) -> None:
    _head_back_to(t, 6)


def wipe_everything(t: Trail) -> None:
    t.sql("DELETE FROM access_audit_log")
    t.sql("DELETE FROM access_audit_checkpoints")
    _head_back_to(t, 0)


def reorder_two_rows(t: Trail) -> None:
    t.sql("UPDATE access_audit_log SET seq = 100 WHERE seq = 3")
    t.sql("UPDATE access_audit_log SET seq = 3 WHERE seq = 4")
    t.sql("UPDATE access_audit_log SET seq = 4 WHERE seq = 100")


def reorder_and_rechain(t: Trail) -> None:
    rows = _rows(t)
    rows[2], rows[3] = rows[3], rows[2]
    _rewrite(t, rows, signer=None)


def forge_a_checkpoint(t: Trail) -> None:
    last = t.value("SELECT hash FROM access_audit_log WHERE seq = :s", s=ENTRIES)
    t.sql(
        "INSERT INTO access_audit_checkpoints (seq, entry_hash, at, signature)"
        " VALUES (:seq, :h, '2026-01-01T00:00:00+00:00', :s)",
        seq=ENTRIES + 5,
        h=hashlib.sha256(str(last).encode()).hexdigest(),
        s="ab" * 64,
    )


def recompute_everything_with_the_dev_key(t: Trail) -> None:
    rows = _rows(t)
    rows[3] = dataclasses.replace(rows[3], actor="mallory")
    _rewrite(t, rows, signer=AuditSigner(dev_signing_key()))


def truncate_and_recompute_with_the_dev_key(t: Trail) -> None:
    _rewrite(t, _rows(t)[:6], signer=AuditSigner(dev_signing_key()))


ATTACKS: list[Callable[[Trail], None]] = [
    modify_a_row,
    modify_a_detail,
    modify_a_row_and_recompute_its_hash,
    modify_a_row_and_recompute_the_chain_and_head,
    insert_a_row_in_the_middle,
    insert_a_row_at_the_tail,
    delete_a_middle_row,
    delete_a_middle_row_and_rechain,
    delete_the_tail,
    delete_the_tail_and_the_head,
    delete_the_tail_and_its_checkpoints,
    delete_the_tail_its_checkpoints_and_the_head,
    delete_the_tail_checkpoints_only,
    delete_every_checkpoint,
    wind_the_head_back,
    wipe_everything,
    reorder_two_rows,
    reorder_and_rechain,
    forge_a_checkpoint,
    recompute_everything_with_the_dev_key,
    truncate_and_recompute_with_the_dev_key,
]
ONLY_THE_EXPORT_CATCHES = {"delete_the_tail_its_checkpoints_and_the_head"}
"""A log cut short together with its stored checkpoints and its head is consistent in itself:
only a checkpoint kept outside the database (or a checkpoint store the attacker cannot write)
shows the cut. That is why checkpoints are exported (docs/access.md)."""


def test_an_untouched_trail_verifies_every_way(trail: Trail) -> None:
    assert trail.problems() == []
    assert trail.problems(public_key_only=True) == []
    assert trail.problems(exported=False) == []
    result = trail.ctx.audit.verify(trail.engine, exported=trail.exported)
    assert result.entries == ENTRIES and result.checkpoints == ENTRIES


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.__name__)
def test_every_tampering_is_refused(trail: Trail, attack: Callable[[Trail], None]) -> None:
    attack(trail)
    operator = trail.problems()
    third_party = trail.problems(public_key_only=True)
    database_only = trail.problems(exported=False)
    assert operator, f"{attack.__name__} verified for the operator"
    assert third_party, f"{attack.__name__} verified with the public key"
    if attack.__name__ in ONLY_THE_EXPORT_CATCHES:
        assert database_only == []
        assert any("gone from the store" in p for p in operator), operator
    else:
        assert database_only, f"{attack.__name__} verified without the exported checkpoints"


def test_the_tampering_suite_counts(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Tried and refused, for the report: every attack on a fresh trail of this backend."""
    tried = refused = 0
    for i, attack in enumerate(ATTACKS):
        folder = tmp_path / str(i)
        folder.mkdir()
        if db_url.startswith("sqlite"):
            url = f"sqlite+pysqlite:///{folder / 'access.db'}"
        else:
            url = request.getfixturevalue("fresh_postgres_db")()
        context = build_context(settings_for(url, folder))
        context.audit.open(context.sessions)
        for n in range(ENTRIES - 1):
            with transaction(context.sessions) as s:
                context.audit.append(s, actor="alice", action="extract.request", detail={"n": n})
        t = Trail(context, exported=context.audit.stored_checkpoints())
        t.switch_triggers_off()
        attack(t)
        for third_party in (False, True):
            tried += 1
            refused += bool(t.problems(public_key_only=third_party))
        context.dispose()
    print(f"\naudit tampering ({db_url.split(':')[0]}): {tried} tried, {refused} refused")
    assert tried == 2 * len(ATTACKS) and refused == tried


def test_checkpoints_kept_in_another_database_survive_a_truncation_of_the_log(
    db_url: str, tmp_path: Path
) -> None:
    base = settings_for(db_url, tmp_path)
    settings = AccessSettings(
        **{
            **base.model_dump(),
            "pseudonym_master_key": base.pseudonym_master_key,
            "checkpoint_database_url": f"sqlite:///{tmp_path / 'checkpoints.db'}",
        }
    )
    ctx = build_context(settings)
    try:
        ctx.audit.open(ctx.sessions)
        for i in range(3):
            with transaction(ctx.sessions) as s:
                ctx.audit.append(s, actor="a", action="extract.request", detail={"i": i})
        t = Trail(ctx, exported=[])
        t.switch_triggers_off()
        # Someone with the access database cuts the log and winds its head back; the
        # checkpoint store is another database they cannot write.
        t.sql("DELETE FROM access_audit_log WHERE seq > 2")
        _head_back_to(t, 2)
        problems = t.problems()
        assert any("newest rows were deleted" in p for p in problems), problems
    finally:
        ctx.dispose()
