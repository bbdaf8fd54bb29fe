"""The link service's use cases: follow the spine log, link each record it owns, publish.

Every link replica decides against the whole spine, exactly as one would (docs/linkage.md,
"Many replicas, one answer"):

* **Spine people are a log, not a partition's business.** The replica that consumes a spine
  person's record writes the new version to the spine log (``spine_log``) in its own
  transaction; every replica applies the log, in order, to its own in-memory index
  (``SpineView``), whatever partitions it holds. A decision is taken *at a log position* and
  stored with it (``decided_at``): the same record at the same position gives the same
  result in any process.
* **Records are the consumer group's.** A person record is linked by the replica that owns
  its input partition, and so are its re-links; a claim with an epoch (``claims``) makes sure
  no two replicas write one partition's records, even while the bus hands it over.
* **The owner re-decides at the change's own position.** When a replica's view follows the
  log, each record of its partitions that a spine change can touch (it shares a blocking key
  with the old or the new version, or its result names an excluded person) and that was
  decided before the change is re-decided once, with the view stepped to the *last* entry
  touching it: a function of the log, not of how far the view moved at once. A record stored
  concurrently with the change was decided before it (its ``decided_at`` says so) and is
  therefore caught the same way, by whichever replica owns it then; how far each
  partition's records are checked is kept with its claim, so a new owner carries on where
  the old one stopped.
* **Models are log entries.** An untrained model's u is refitted to the spine when a record
  needs a decision and the spine has moved by more than a tenth since the last fit; the fit is
  appended to the log and every replica uses it from that position on. A model change (a
  refit that changed something, or a new trained model deployed) makes every record decided
  before it be decided again, partition by partition, resumably.

Handlers call :meth:`LinkService.on_linkage_keys` inside the worker's transaction; the work
that needs transactions of its own (catching up, claiming, re-linking, fitting) is
:meth:`LinkService.prepare`, which the worker runs before each batch and when idle.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from contracts.events import (
    LINKED_STATUSES,
    LinkageKeysPublished,
    LinkReason,
    LinkResultPublished,
    LinkStatus,
    PersonObjected,
    RecordObjected,
)
from contracts.objections import ObjectionKind
from contracts.services import Service
from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS
from services.link import claims as claim_rows
from services.link import spine_log
from services.link import storage as t
from services.link.domain import (
    REVIEW,
    EncodedRecord,
    LinkageModel,
    LinkDecision,
    SpineIndex,
    default_model,
    with_history,
)
from services.link.domain.alf import alf_for
from services.link.domain.decide import with_competition
from services.link.domain.view import ModelEntry, SpineView, model_payload, parse_model_payload
from services.link.rows import LinkRows
from services.link.snapshots import Snapshots
from services.runtime.bus.api import Producer
from services.runtime.db import transaction
from services.runtime.pagination import keyset_page
from services.runtime.publishing import OutgoingMessage, derived_event_id, frame, publish_all

__all__ = ["LinkService", "contract_status", "result_event_id"]

log = logging.getLogger("fjo.link")

_EVENT_NS = uuid.UUID("0b3f6a52-7c1d-4e8b-9f2a-5d6c7e8f9a01")
SPINE_TYPE = "spine-person"
RELINK_CHUNK = 500
"""Records re-decided per transaction (a bulk re-link commits its progress in these steps)."""
BULK_PER_PREPARE = 2_000
"""Records a bulk re-link re-decides before the worker takes its next batch."""
_LINKED = frozenset(
    {
        LinkStatus.NHS_NUMBER,
        LinkStatus.EXACT_FIVE_FIELDS,
        LinkStatus.EXACT_FOUR_FORENAME_VARIANT,
        LinkStatus.PROBABILISTIC,
        LinkStatus.CLERICAL_ACCEPTED,
    }
)
_ALL = -1
"""The pseudo-partition of a service that owns every record (tests, one-process tools)."""


def contract_status(detail: int) -> LinkStatus:
    """The published status of a domain decision code (91 -> 90, 97/98 -> 99)."""
    if detail in REVIEW:
        return LinkStatus.REVIEW
    if detail in LINKED_STATUSES:
        return LinkStatus(detail)
    return LinkStatus.UNLINKED


def result_event_id(record_token: str, sequence: int) -> uuid.UUID:
    """The id of the link result ``sequence`` of a record (the same on every re-publish)."""
    return derived_event_id(_EVENT_NS, record_token, sequence)


def _now() -> datetime:
    return datetime.now(UTC)


class LinkService:
    """The spine view, the records this replica owns, and their decisions."""

    def __init__(
        self,
        alf_key: bytes,
        model: LinkageModel | None = None,
        *,
        estimate_u_from_spine: bool | None = None,
        results_topic: str | None = None,
        input_topic: str | None = None,
        owner: str | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        self.alf_key = alf_key
        self._spine_key_versions: set[int] = set()
        self.results_topic = results_topic
        self.input_topic = input_topic or PSEUDONYMISE_LINKAGE_KEYS.name
        self.configured = model or default_model()
        self._estimate_override = estimate_u_from_spine
        self.view = SpineView(self.configured, estimate_u_from_spine=estimate_u_from_spine)
        self.owner = owner or uuid.uuid4().hex[:16]
        self.snapshots = snapshots
        self.claimed = False
        """True once partitions are claimed (a worker); False: every record is this one's."""
        self.claims: dict[int, claim_rows.Claim] = {}
        self._marks: dict[int, tuple[int, int]] = {_ALL: (0, 0)}
        """Partition -> (spine position, model position) its records are decided through."""
        self._new_incoming()
        self._speculative: tuple[int, ModelEntry] | None = None
        self._unsettled = False
        self._dirty = False
        self._snapshot_rows = 0
        self.stats: dict[str, int] = {"relinked": 0, "rechecked": 0, "bulk": 0, "fits": 0}
        self.erasures: dict[str, int] = {}
        """Spine people an erasure excluded, with the exclusion's position."""
        self._forgotten: set[str] = set()
        """Erasures whose versions the log no longer holds (every partition checked past)."""
        self._superseded_below = 0
        """Snapshots below this position may hold an erased person: they are replaced."""
        self._decided_stale = False
        """Following the log re-decided records on a view whose model is due a refit: the
        fit must follow (its model change re-decides them), as it would have before."""

    def _new_incoming(self) -> None:
        self.incoming = SpineIndex(self.view.model, self.view.index.schema, side="incoming")
        self.incoming_types: dict[str, str] = {}
        self.partition_of: dict[str, int] = {}

    # -- the model version and the view ----------------------------------------------------

    @property
    def model_version(self) -> str:
        return self.view.model.version

    @property
    def index(self) -> SpineIndex:
        return self.view.index

    @property
    def base_model(self) -> LinkageModel:
        """The base model in force (the configured one until the log deploys another)."""
        return self.view.base

    def start(self, session: Session, *, owns_everything: bool = True) -> None:
        """Bring the view up: the newest usable snapshot, the configured model into the log
        if it never was, then the log from there; with ``owns_everything``, load every
        stored record as this service's own (tests and one-process tools)."""
        if self.snapshots is not None:
            loaded = self.snapshots.latest(self.view.model)
            if loaded is not None:
                at = loaded.log_position
                self.view.index = loaded
                # The snapshot holds spine people only: the models up to it come from the log.
                for e in spine_log.read_models(session, at):
                    if self.view.apply_model(e.position, parse_model_payload(e.payload)):
                        self._model_changed(session)
                # Nor who was excluded (their rows are dead in it already).
                for e in spine_log.read_exclusions(session, at):
                    self.view.apply_exclusion(e.position, e.record_token or "")
                    self._note_exclusion(e)
                self.view.index.log_position = at
                log.info("spine snapshot loaded", extra=self.view.describe())
        self.catch_up(session)
        self.ensure_base(session)
        self.catch_up(session)
        if owns_everything:
            self._load_records(session, None)

    def ensure_base(self, session: Session) -> bool:
        """Append the configured model to the log if its version was never there (a
        deployment); True if it was appended. A version seen before is not brought back:
        roll back by deploying a new version."""
        version = self.configured.version
        known = session.execute(
            select(func.count()).select_from(t.models).where(t.models.c.version == version)
        ).scalar_one()
        if known:
            return False
        entry = ModelEntry(self.configured, base=True, fitted_spine=None)
        self._append_model(session, entry)
        log.info("model deployed", extra={"model": version})
        return True

    def _append_model(self, session: Session, entry: ModelEntry) -> int:
        (position,) = spine_log.append(
            session, [(spine_log.MODEL, None, None, model_payload(entry))]
        )
        self._know_model(session, entry.model, position)
        if not entry.base:
            # A refit is of the base in force: that base counts as deployed from here on.
            self._know_model(session, self.view.base, None)
        return position

    def _know_model(self, session: Session, model: LinkageModel, position: int | None) -> None:
        exists = session.execute(
            select(func.count()).select_from(t.models).where(t.models.c.version == model.version)
        ).scalar_one()
        if not exists:
            session.execute(
                insert(t.models).values(
                    version=model.version,
                    model=model.to_json(),
                    created_at=_now(),
                    position=position,
                )
            )

    def catch_up(self, session: Session) -> int:
        """Apply the log from the view's position to its head; the entries applied (no
        record is re-decided: :meth:`_follow` does that on the way)."""
        applied = 0
        while True:
            entries = spine_log.read_after(session, self.view.position)
            if not entries:
                break
            self._apply(session, entries)
            applied += len(entries)
        return applied

    def _apply(
        self,
        session: Session,
        entries: list[spine_log.LogEntry],
        compacts: Mapping[int, tuple] | None = None,
    ) -> None:
        """Apply ``entries`` (in order) to the view; ``compacts``: spine versions already
        compacted, by position."""
        people: list[tuple[int, str, str]] = []
        known: list[tuple[int, str, tuple]] = []

        def flush() -> None:
            if people:
                self.view.apply_people(people)
                people.clear()
            if known:
                self.view.apply_versions(known)
                known.clear()

        for e in entries:
            if e.kind == spine_log.PERSON:
                assert e.record_token is not None
                compact = None if compacts is None else compacts.get(e.position)
                if compact is not None:
                    if people:
                        flush()
                    known.append((e.position, e.record_token, compact))
                else:
                    if known:
                        flush()
                    people.append((e.position, e.record_token, e.payload))
                continue
            flush()
            if e.kind == spine_log.EXCLUDE:
                assert e.record_token is not None
                self.view.apply_exclusion(e.position, e.record_token)
                self._note_exclusion(e)
            elif e.kind == spine_log.ERASED:
                continue  # a version an erasure removed: the person is excluded already
            elif self.view.apply_model(e.position, parse_model_payload(e.payload)):
                self._model_changed(session)
        flush()
        if entries:
            self.view.index.log_position = max(self.view.position, entries[-1].position)

    def _note_exclusion(self, entry: spine_log.LogEntry) -> None:
        if entry.record_token and json.loads(entry.payload).get("kind") == ObjectionKind.ERASURE:
            self.erasures.setdefault(entry.record_token, entry.position)

    def _checked_everywhere(self, session: Session) -> int:
        """The log position every stored record has been checked up to: the lowest of the
        partitions' claims (and of this service's own mark when it owns every record)."""
        c = t.partitions.c
        low = session.execute(
            select(func.min(c.spine_position)).where(c.topic == self.input_topic)
        ).scalar()
        marks = [m[0] for p, m in self._marks.items() if p == _ALL]
        values = [int(low)] if low is not None else []
        values += marks
        return min(values) if values else self.view.position

    def forget_erasures(self, session: Session) -> list[str]:
        """Rewrite the log entries of the erased spine people whose exclusion every
        partition's records have been checked past: no owner needs their versions any more
        to find the records the exclusion touched, so their keyed encodings go (the
        ``exclude`` entry stays). The people forgotten now; the caller commits."""
        pending = {tok: at for tok, at in self.erasures.items() if tok not in self._forgotten}
        if not pending:
            return []
        checked = self._checked_everywhere(session)
        due = sorted(tok for tok, at in pending.items() if at <= checked)
        if not due:
            return []
        rewritten = spine_log.erase(session, due)
        if rewritten:
            log.info("erased spine people's log entries rewritten", extra={"entries": rewritten})
        self._forgotten.update(due)
        self._superseded_below = max(self._superseded_below, *(pending[tok] for tok in due))
        return due

    def _model_changed(self, session: Session) -> None:
        if self.view.rebuild_needed:
            # A model that reads other keys: the spine and the records are laid out again.
            log.info("model with another key layout: rebuilding the spine view from the log")
            old = self.view
            view = SpineView(old.model, estimate_u_from_spine=self._estimate_override)
            view.base, view.estimate_u = old.base, old.estimate_u
            view.fitted_spine, view.model_position = old.fitted_spine, old.model_position
            self.view = view
            self._replay_until(session, old.position)
            self._reload_records(session)
        else:
            self.incoming.model = self.view.model
        log.info("model in force changed", extra=self.view.describe())

    def _replay_until(self, session: Session, position: int) -> None:
        while self.view.position < position:
            entries = [
                e
                for e in spine_log.read_after(session, self.view.position)
                if e.position <= position
            ]
            if not entries:
                break
            people: list[tuple[int, str, str]] = []
            for e in entries:
                if e.kind == spine_log.PERSON:
                    people.append((e.position, e.record_token or "", e.payload))
                elif e.kind == spine_log.EXCLUDE:
                    self.view.apply_people(people)
                    people = []
                    self.view.apply_exclusion(e.position, e.record_token or "")
            self.view.apply_people(people)
            self.view.index.log_position = entries[-1].position

    # -- the records this replica owns -------------------------------------------------------

    def _owned(self) -> list[int]:
        return sorted(self.claims) if self.claimed else [_ALL]

    def _load_records(self, session: Session, partitions: Iterable[int] | None) -> int:
        k = t.incoming_keys.c
        query = select(k.record_token, k.record_type, k.linkage, k.partition)
        if partitions is not None:
            wanted = sorted(set(partitions))
            if not wanted:
                return 0
            query = query.where(k.partition.in_(wanted))
        ids: list[str] = []
        compacts: list[tuple] = []
        schema = self.incoming.schema
        for token, rtype, keys, partition in session.execute(query):
            ids.append(token)
            compacts.append(schema.compact(EncodedRecord.from_json(token, keys)))
            self.incoming_types[token] = rtype
            self.partition_of[token] = _ALL if not self.claimed else int(partition or 0)
        self.incoming.add_many(ids, compacts)
        return len(ids)

    def _reload_records(self, session: Session) -> None:
        self._new_incoming()
        self._load_records(session, self._owned() if self.claimed else None)

    def _drop_records(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for token in [tok for tok, p in self.partition_of.items() if p in gone]:
            self.incoming.discard(token)
            self.partition_of.pop(token, None)
            self.incoming_types.pop(token, None)

    # -- preparing a batch (transactions of its own) ------------------------------------------

    def prepare(
        self,
        sessions: sessionmaker[Session],
        producer: Producer,
        assignment: Iterable[int] | None,
        *,
        decisions_ahead: bool = True,
    ) -> None:
        """Everything a batch needs first, each step committed: the view caught up, the
        partitions in ``assignment`` claimed (their records loaded, others dropped), the
        model fitted if a record is about to need it, and the owned records re-checked."""
        if self._unsettled or self._dirty:
            # The last run did not commit (or failed part-way): what this process holds of
            # its records may be ahead of the database. Read them again.
            with transaction(sessions) as s:
                self._reload_records(s)
            self._unsettled = self._dirty = False
        if assignment is not None:
            self._sync_claims(sessions, set(assignment))
        try:
            self._follow(sessions, producer)
            if self._fit_due(decisions_ahead):
                with transaction(sessions) as s:
                    self._fit(s)
                self._follow(sessions, producer)
            self._recheck(sessions, producer)
        except claim_rows.LostClaim as exc:
            self.lose({exc.partition})
            log.info("partition claimed by another replica", extra={"partition": exc.partition})
        if len(self.erasures) > len(self._forgotten):
            forgotten = set(self._forgotten)
            try:
                with transaction(sessions) as s:
                    self.forget_erasures(s)
            except BaseException:
                self._forgotten = forgotten  # not committed: tried again next time
                raise

    def _stepping(self) -> list[int]:
        """The owned partitions whose records are checked up to the view's position: they
        follow the log entry by entry (:meth:`_step`). A partition behind the view (claimed
        from an owner that had checked less than this view holds) is re-checked at the view's
        position instead (:meth:`_spine_changes`)."""
        if not self.partition_of:
            return []
        at = self.view.position
        return [p for p in self._owned() if self._marks.get(p, (0, 0))[0] >= at]

    def _follow(self, sessions: sessionmaker[Session], producer: Producer) -> None:
        """Catch the view up to the log's head, re-deciding on the way each owned record a
        spine change touches, at the position of the last change that touches it (one
        transaction per read of the log)."""
        while True:
            with transaction(sessions) as s:
                rows = LinkRows(s)
                out = self._follow_once(s, rows)
                if out is None:
                    return
                rows.flush()
                publish_all(producer, out)
                producer.flush()

    def _follow_once(self, session: Session, rows: LinkRows) -> list[OutgoingMessage] | None:
        """One read of the log applied (:meth:`_step` for the partitions that follow it);
        None when the view is at the head."""
        entries = spine_log.read_after(session, self.view.position)
        if not entries:
            return None
        stepping = self._stepping()
        if not stepping:
            self._apply(session, entries)
            return []
        self._hold(session, stepping)
        out = self._step(session, rows, entries, stepping)
        for p in stepping:
            if p in self._marks:
                self._advance(session, p, spine=max(self._marks[p][0], self.view.position))
        return out

    def _step(
        self,
        session: Session,
        rows: LinkRows,
        entries: list[spine_log.LogEntry],
        partitions: list[int],
    ) -> list[OutgoingMessage]:
        """Apply ``entries`` (the next ones after the view's position) to the view, stopping
        where a record of ``partitions`` is to be re-decided.

        Which records an entry touches does not depend on the view: those sharing a
        blocking key with the version it brings or the version it replaces or excludes,
        and, for an exclusion, those whose result names the person. Each touched record is
        re-decided once, with the view at the last entry of ``entries`` that touches it (if
        it was decided before that entry): a function of the log, whichever replica owns the
        record and however many entries its view takes at once. Between those positions the
        entries are applied in bulk."""
        view = self.view
        wanted = set(partitions)
        schema = view.index.schema
        compacts: dict[int, tuple] = {}
        latest: dict[str, tuple | None] = {}  # a person's version as of the entry read last
        gone: dict[str, int] = {}  # persons excluded by these entries, and where
        last: dict[str, int] = {}  # record -> the last entry touching it
        alive = self.incoming.alive

        def before(token: str) -> tuple | None:
            if token in latest:
                return latest[token]
            row = view.index.position_of(token)
            return None if row is None else view.index.record(row)

        def touch(compact: tuple | None, position: int) -> None:
            if compact is None:
                return
            hits = self.incoming.matches(compact)
            if not len(hits):
                return
            for tok in self.incoming.ids_of(hits[alive[hits]]):
                p = self.partition_of.get(tok)
                if p in wanted and position > self._marks[p][0]:
                    last[tok] = position  # entries come in order: the last one wins

        for e in entries:
            token = e.record_token
            if e.kind not in (spine_log.PERSON, spine_log.EXCLUDE) or token is None:
                continue
            if token in view.excluded or token in gone:
                continue  # neither a version nor a second exclusion changes anything
            old = before(token)
            if e.kind == spine_log.PERSON:
                new = schema.compact(EncodedRecord.from_json(token, e.payload))
                compacts[e.position] = new
                latest[token] = new
                touch(new, e.position)
            else:
                latest[token] = None
                gone[token] = e.position
            touch(old, e.position)
        if gone:
            r = t.results.c
            linked = session.execute(
                select(r.record_token, r.spine_token).where(r.spine_token.in_(sorted(gone)))
            )
            for tok, spine in linked:
                p = self.partition_of.get(tok)
                if p in wanted and gone[spine] > self._marks[p][0]:
                    last[tok] = max(last.get(tok, 0), gone[spine])
        self.stats["rechecked"] += len(last)
        rows.prefetch(last)
        due: dict[int, list[str]] = {}
        for tok, at in last.items():
            prev = rows.results.get(session, tok)
            if prev is None or int(prev["decided_at"]) < at:
                due.setdefault(at, []).append(tok)
        out: list[OutgoingMessage] = []
        done = 0
        for at in sorted(due):
            upto = done
            while upto < len(entries) and entries[upto].position <= at:
                upto += 1
            self._apply(session, entries[done:upto], compacts)
            done = upto
            self._decided_stale = self._decided_stale or self.view.stale()
            for tok in sorted(due[at]):
                out += self._relink(rows, tok, LinkReason.SPINE_CHANGED)
        self._apply(session, entries[done:], compacts)
        return out

    def _fit_due(self, decisions_ahead: bool) -> bool:
        """Whether the model is to be refitted now: a record is about to be decided, or was
        just re-decided while following the log, on a view that moved too far since the
        last fit."""
        decided_stale, self._decided_stale = self._decided_stale, False
        ahead = decisions_ahead or decided_stale or self._rechecks_ahead()
        return ahead and self.view.stale()

    def _rechecks_ahead(self) -> bool:
        """Whether owned records are about to be re-decided (so they need the model fit)."""
        if not self.partition_of:
            return False
        view = self.view
        return any(
            self._marks[p][0] < view.position or self._marks[p][1] < view.model_position
            for p in self._owned()
        )

    def _sync_claims(self, sessions: sessionmaker[Session], assigned: set[int]) -> None:
        self.claimed = True
        lost = set(self.claims) - assigned
        if lost:
            for p in lost:
                self.claims.pop(p)
                self._marks.pop(p, None)
            self._drop_records(lost)
        self._marks.pop(_ALL, None)
        new = assigned - set(self.claims)
        if not new:
            return
        with transaction(sessions) as s:
            got = claim_rows.claim(s, self.input_topic, new, self.owner)
        with transaction(sessions) as s:
            # After the claim: whatever the previous owner committed is in what this reads.
            self._load_records(s, got)
        for p, c in got.items():
            self.claims[p] = c
            self._marks[p] = (c.spine_position, c.model_position)
        log.info(
            "partitions claimed",
            extra={"partitions": sorted(got), "records": len(self.partition_of)},
        )

    def _fit(self, session: Session) -> None:
        spec = self._speculative
        entry = spec[1] if spec is not None and spec[0] == self.view.position else self.view.fit()
        self._speculative = None
        self._append_model(session, entry)
        self.stats["fits"] += 1
        log.info("model refitted to the spine", extra={"model": entry.model.version})

    def warm(self, sessions: sessionmaker[Session] | None = None) -> None:
        """Fit the model while idle if a record linked now would need it; the fit is kept
        for the position it was made at and used only if the view is still there."""
        if self.view.stale() and (
            self._speculative is None or self._speculative[0] != self.view.position
        ):
            self._speculative = (self.view.position, self.view.fit())

    def _recheck(self, sessions: sessionmaker[Session], producer: Producer) -> None:
        """Re-decide the owned records that the log has moved under, in committed steps."""
        view = self.view
        bulk_budget = BULK_PER_PREPARE
        while True:
            behind_spine = [p for p in self._owned() if self._marks[p][0] < view.position]
            behind_model = [p for p in self._owned() if self._marks[p][1] < view.model_position]
            if not behind_spine and not behind_model:
                return
            if behind_spine:
                with transaction(sessions) as s:
                    self._hold(s, behind_spine)
                    rows = LinkRows(s)
                    out = self._spine_changes(s, rows, behind_spine)
                    rows.flush()
                    publish_all(producer, out)
                    producer.flush()
                    for p in behind_spine:
                        self._advance(s, p, spine=view.position)
                continue
            if bulk_budget <= 0:
                return
            with transaction(sessions) as s:
                self._hold(s, behind_model)
                rows = LinkRows(s)
                out, done = self._bulk(s, rows, behind_model, min(RELINK_CHUNK, bulk_budget))
                rows.flush()
                publish_all(producer, out)
                producer.flush()
                for p in done:
                    self._advance(s, p, model=view.model_position)
            bulk_budget -= RELINK_CHUNK

    def _hold(self, session: Session, partitions: Iterable[int]) -> None:
        if self.claimed:
            claim_rows.hold(
                session, self.input_topic, {p: self.claims[p].epoch for p in partitions}
            )

    def _advance(
        self, session: Session, p: int, *, spine: int | None = None, model: int | None = None
    ) -> None:
        sp, mp = self._marks[p]
        if self.claimed:
            claim_rows.advance(
                session,
                self.input_topic,
                p,
                self.claims[p].epoch,
                spine_position=spine,
                model_position=model,
            )
        self._marks[p] = (sp if spine is None else spine, mp if model is None else model)

    def sync(self, session: Session, *, decisions_ahead: bool = True) -> list[OutgoingMessage]:
        """:meth:`prepare` in the caller's one session, for a service owning every record
        (tests, one-process tools): catch up, refit if a record would need it, re-check.
        The caller publishes what it returns and commits."""
        rows = LinkRows(session)
        out: list[OutgoingMessage] = []
        while (more := self._follow_once(session, rows)) is not None:
            out += more
        if self._fit_due(decisions_ahead):
            self._fit(session)
            while (more := self._follow_once(session, rows)) is not None:
                out += more
        out += self.recheck(session, rows)
        self.forget_erasures(session)
        return out

    def recheck(self, session: Session, rows: LinkRows | None = None) -> list[OutgoingMessage]:
        """One session's worth of :meth:`prepare`'s re-checks, for a service owning every
        record (tests, tools): the caller commits."""
        rows = rows or LinkRows(session)
        view = self.view
        out: list[OutgoingMessage] = []
        if self._marks[_ALL][0] < view.position:
            out += self._spine_changes(session, rows, [_ALL])
            self._marks[_ALL] = (view.position, self._marks[_ALL][1])
        while self._marks[_ALL][1] < view.model_position:
            more, done = self._bulk(session, rows, [_ALL], RELINK_CHUNK)
            out += more
            if done:
                self._marks[_ALL] = (self._marks[_ALL][0], view.model_position)
            elif not more and self._dirty:
                break  # rows this process does not hold: the caller reloads first
        rows.flush()
        return out

    def _spine_changes(
        self, session: Session, rows: LinkRows, partitions: list[int]
    ) -> list[OutgoingMessage]:
        """Re-decide the records of ``partitions`` that a spine change after their mark can
        touch and that were decided before that change."""
        view = self.view
        after = min(self._marks[p][0] for p in partitions)
        wanted = set(partitions)
        changed = view.index.changed_between(after, view.position)
        tokens = [tok for tok, p in self.partition_of.items() if p in wanted]
        if not len(changed) or not tokens:
            return []
        # From each change to the records it touches, or from each record to the changes
        # that touch it: whichever is fewer lookups.
        touched: dict[str, int] = {}  # record -> earliest position of a change touching it
        if len(changed) <= len(tokens):
            born, dead = view.index.born, view.index.dead
            for row in changed.tolist():
                when = int(born[row]) if after < born[row] <= view.position else int(dead[row])
                compact = view.index.record(row)
                hits = self.incoming.matches(compact)
                if not len(hits):
                    continue
                alive = hits[self.incoming.alive[hits]] if len(hits) else hits
                for tok in self.incoming.ids_of(alive):
                    p = self.partition_of.get(tok)
                    if p in wanted and when > self._marks[p][0]:
                        touched[tok] = min(touched.get(tok, when), when)
        else:
            rows.prefetch(tokens)
            for tok in tokens:
                row = self.incoming.position_of(tok)
                prev = rows.results.get(session, tok)
                if row is None or prev is None:
                    continue
                since = max(int(prev["decided_at"]), self._marks[self.partition_of[tok]][0])
                if since < view.position and view.index.touched_since(
                    self.incoming.record(row), since, view.position
                ):
                    touched[tok] = since + 1
        # A spine person excluded meanwhile: every record linked to them is decided again
        # (and then withdrawn), whether or not a blocking key still reaches them.
        gone = view.excluded_between(after, view.position)
        if gone:
            r = t.results.c
            linked = session.execute(
                select(r.record_token, r.spine_token).where(r.spine_token.in_(sorted(gone)))
            )
            for tok, spine in linked:
                if self.partition_of.get(tok) in wanted:
                    when = view.excluded[spine]
                    touched[tok] = min(touched.get(tok, when), when)
        self.stats["rechecked"] += len(touched)
        if not touched:
            return []
        rows.prefetch(touched)
        out: list[OutgoingMessage] = []
        for tok in sorted(touched):
            prev = rows.results.get(session, tok)
            if prev is not None and int(prev["decided_at"]) >= touched[tok]:
                continue  # decided after that change already
            out += self._relink(rows, tok, LinkReason.SPINE_CHANGED)
        return out

    def _bulk(
        self, session: Session, rows: LinkRows, partitions: list[int], limit: int
    ) -> tuple[list[OutgoingMessage], list[int]]:
        """Re-decide up to ``limit`` records decided before the model in force; the
        partitions that have none left."""
        view = self.view
        r, k = t.results.c, t.incoming_keys.c
        query = (
            select(r.record_token)
            .join(t.incoming_keys, k.record_token == r.record_token)
            .where(r.decided_at < view.model_position)
            .order_by(r.record_token)
            .limit(limit)
        )
        if self.claimed:
            query = query.where(k.partition.in_(partitions))
        found = list(session.execute(query).scalars())
        tokens = [tok for tok in found if tok in self.partition_of]
        if len(tokens) < len(found):
            # Rows the database has but this process does not hold: read them again next.
            self._dirty = True
        rows.prefetch(tokens)
        out: list[OutgoingMessage] = []
        for tok in tokens:
            out += self._relink(rows, tok, LinkReason.MODEL_RETRAINED)
        self.stats["bulk"] += len(tokens)
        if len(found) < limit or not tokens:
            return out, partitions if len(found) < limit else []
        count = (
            select(func.count())
            .select_from(t.results.join(t.incoming_keys, k.record_token == r.record_token))
            .where(r.decided_at < view.model_position)
        )
        if self.claimed:
            count = count.where(k.partition.in_(partitions))
        left = int(session.execute(count).scalar_one()) - len(tokens)
        log.info(
            "bulk re-link under a new model", extra={"model": view.model.version, "left": left}
        )
        return out, [] if left > 0 else partitions

    # -- the worker's run (inside its transaction) -------------------------------------------

    def begin_run(self, session: Session, partitions: Iterable[int]) -> None:
        """Fence a run's partitions: :class:`claims.LostClaim` if one is not (or no longer)
        this replica's."""
        self._unsettled = True
        if not self.claimed:
            return
        wanted = set(partitions)
        missing = sorted(wanted - set(self.claims))
        if missing:
            raise claim_rows.LostClaim(missing[0], f"partition {missing[0]} is not claimed")
        self._hold(session, wanted)

    def run_committed(self) -> None:
        """The worker committed the run: what this process holds matches the database."""
        self._unsettled = False

    def run_failed(self) -> None:
        """A run was rolled back (its records go one at a time): what this process added
        for it is not in the database; read the records again before the next batch."""
        self._dirty = True

    def lose(self, partitions: Iterable[int]) -> None:
        """Another replica claimed these partitions: forget them (claimed again if the bus
        still assigns them here)."""
        gone = set(partitions) & set(self.claims)
        for p in gone:
            self.claims.pop(p)
            self._marks.pop(p, None)
        self._drop_records(gone)

    def on_linkage_keys(
        self,
        session: Session,
        event: LinkageKeysPublished,
        rows: LinkRows | None = None,
        *,
        partition: int | None = None,
    ) -> list[OutgoingMessage]:
        """Store the keys; a spine person's new version goes into the spine log, any other
        record is linked against the view as it is.

        With ``rows`` (a run's :class:`LinkRows`), writes wait for the caller's
        ``rows.flush()``; without, they are written before this returns.
        """
        if rows is None:
            rows = LinkRows(session)
            out = self.on_linkage_keys(session, event, rows, partition=partition)
            rows.flush()
            return out
        token = event.record_token
        rec = EncodedRecord.from_keys(token, event.keys())
        if event.record_type.value == SPINE_TYPE:
            self._upsert_spine(session, event, rec, rows)
            return []
        row = rows.incoming.get(session, token)
        rekeyed = False
        if row is not None:
            held = (int(row["record_version"]), int(row.get("key_version") or 1))
            if event.record_version < held[0]:
                return []  # an older version arriving late changes nothing
            if event.record_version == held[0] and event.key_version < held[1]:
                return []  # an encoding a rotation has replaced
            rekeyed = event.record_version == held[0] and event.key_version > held[1]
        rows.incoming.put(
            session,
            token,
            {
                "record_type": event.record_type.value,
                "record_version": event.record_version,
                "key_version": event.key_version,
                "linkage": rec.to_json(),
                "partition": partition,
            },
        )
        self.incoming.add(rec)
        self.incoming_types[token] = event.record_type.value
        self.partition_of[token] = _ALL if not self.claimed else int(partition or 0)
        if rekeyed and not self._spine_encoded_under(session, event.key_version):
            # The same record re-encoded under a new key version before the spine people it
            # can meet: its decision stands, and the spine's own re-encoding (a version born
            # under this key version, sharing its keys) decides it again (docs/operators.md).
            return []
        return self._relink(rows, token, LinkReason.INITIAL)

    def on_record_objected(
        self, session: Session, event: RecordObjected, rows: LinkRows | None = None
    ) -> list[OutgoingMessage]:
        """An objection, erasure request or opt-out about a record link holds.

        A record's objection or erasure withdraws its link (a superseding ``OBJECTED``
        result) and forgets its keys. A spine person's goes into the spine log as an
        exclusion, so every replica takes them out of the spine at the same position; the
        records linked to them are withdrawn by their owners' re-checks. For any request
        about a spine person, one ``link.person-objected`` event names them by ALF (an
        opt-out changes nothing in linkage: access acts on it).
        """
        if rows is None:
            rows = LinkRows(session)
            done = self.on_record_objected(session, event, rows)
            rows.flush()
            return done
        token = event.record_token
        withdraw = event.kind is not ObjectionKind.OPT_OUT
        out: list[OutgoingMessage] = []
        if event.record_type.value == SPINE_TYPE:
            erasure = event.kind is ObjectionKind.ERASURE
            if withdraw and (
                token not in self.view.excluded or (erasure and token not in self.erasures)
            ):
                # An erasure after an objection is logged too: the exclusion stands from the
                # objection's position, the erasure makes the log forget the encodings.
                payload = json.dumps(
                    {"receipt_id": str(event.receipt_id), "kind": event.kind.value},
                    sort_keys=True,
                )
                spine_log.append(session, [(spine_log.EXCLUDE, token, None, payload)])
                # What link kept of the person (keyed encodings) goes with them. The log keeps
                # their versions, which replay the order decisions were taken in, until an
                # erasure's exclusion is behind every partition (``forget_erasures``).
                c = t.spine_records.c
                session.execute(delete(t.spine_records).where(c.record_token == token))
                h = t.spine_history.c
                session.execute(delete(t.spine_history).where(h.record_token == token))
                rows.spine.forget([token])
            alf = alf_for(self.alf_key, token)
            self._audit(rows, "person-objected", token, {"kind": event.kind.value, "alf": alf})
            person = PersonObjected(receipt_id=event.receipt_id, kind=event.kind, alf=alf)
            out.append(
                frame(
                    person,
                    source=Service.LINK,
                    event_id=derived_event_id(_EVENT_NS, "person-objected", event.receipt_id),
                    topic=self.results_topic,
                )
            )
            return out
        if not withdraw:
            return out
        prev = rows.results.get(session, token)
        if token in self.partition_of:
            self.incoming.discard(token)
            self.partition_of.pop(token, None)
            self.incoming_types.pop(token, None)
        k = t.incoming_keys.c
        session.execute(delete(t.incoming_keys).where(k.record_token == token))
        rows.incoming.forget([token])
        if prev is None or prev["status"] == LinkStatus.OBJECTED:
            return out  # never linked here, or withdrawn already (a replay)
        return self._withdraw(rows, token, prev)

    def _withdraw(
        self, rows: LinkRows, token: str, prev: Mapping[str, Any]
    ) -> list[OutgoingMessage]:
        """Publish ``OBJECTED`` for a record, superseding its link."""
        decision = LinkDecision(
            record_id=token,
            spine_id=None,
            status=int(LinkStatus.OBJECTED),
            probability=0.0,
            weight=0.0,
        )
        return self._store_and_publish(
            rows, token, decision, LinkReason.OBJECTION, prev, status=LinkStatus.OBJECTED
        )

    def _spine_encoded_under(self, session: Session, key_version: int) -> bool:
        """Whether any spine person is held under ``key_version`` (or later); once true,
        true for good (a key version never goes back)."""
        if key_version in self._spine_key_versions:
            return True
        c = t.spine_records.c
        found = session.execute(
            select(c.record_token).where(c.key_version >= key_version).limit(1)
        ).first()
        if found is not None:
            self._spine_key_versions.add(key_version)
        return found is not None

    def _upsert_spine(
        self, session: Session, event: LinkageKeysPublished, rec: EncodedRecord, rows: LinkRows
    ) -> None:
        token = event.record_token
        if token in self.view.excluded:
            return  # out of the spine for good (an objection or erasure)
        row = rows.spine.get(session, token)
        # A higher key version replaces whatever the old one held: a rotation's re-encode
        # publishes a person's every version again, oldest first, under the new key.
        held_key = None if row is None else int(row["key_version"])
        if held_key is not None and (
            event.key_version < held_key
            or (event.key_version == held_key and row["record_version"] >= event.record_version)
        ):
            return
        rekeyed = held_key is not None and event.key_version > held_key
        rows.history(  # each version once, as first encoded (rows.LinkRows.history)
            {
                "record_token": token,
                "record_version": event.record_version,
                "linkage": rec.to_json(),
                "recorded_at": _now(),
            }
        )
        if row is not None and not rekeyed:
            # Tokens of two key versions never mix: a re-encoded person's history is built
            # again from its re-encoded versions.
            rec = with_history(rec, EncodedRecord.from_json(token, row["linkage"]))
        stored = rec.to_json()
        rows.spine.put(
            session,
            token,
            {
                "record_version": event.record_version,
                "key_version": event.key_version,
                "linkage": stored,
                "updated_at": _now(),
            },
        )
        rows.log_person(token, event.record_version, stored)

    # -- linking -------------------------------------------------------------------------------

    def _relink(self, rows: LinkRows, token: str, reason: LinkReason) -> list[OutgoingMessage]:
        pos = self.incoming.position_of(token)
        if pos is None:
            return []
        prev = rows.results.get(rows.session, token)
        if prev is not None and prev["status"] == LinkStatus.OBJECTED:
            # Withdrawn by an objection: no re-link brings a link back.
            rows.results.put(rows.session, token, {"decided_at": self.view.position})
            return []
        if prev is not None and prev["spine_token"] in self.view.excluded:
            # Linked to a person who objected: withdrawn, not silently linked to someone
            # else because the right person left.
            return self._withdraw(rows, token, prev)
        decision = self.view.linker.link_compact(token, self.incoming.record(pos))
        if (
            prev is not None
            and prev["status"] == LinkStatus.CLERICAL_ACCEPTED
            and reason is not LinkReason.INITIAL
            and prev["spine_token"] is not None
        ):
            # A reviewer's decision stands until a reviewer changes it.
            rows.results.put(rows.session, token, {"decided_at": self.view.position})
            return []
        return self._store_and_publish(rows, token, decision, reason, prev)

    def _store_and_publish(
        self,
        rows: LinkRows,
        token: str,
        decision: LinkDecision,
        reason: LinkReason,
        prev: Mapping[str, Any] | None,
        *,
        status: LinkStatus | None = None,
        spine_token: str | None = None,
        model_version: str | None = None,
        decided_at: int | None = None,
    ) -> list[OutgoingMessage]:
        status = status or contract_status(decision.status)
        linked = status in _LINKED
        spine = spine_token if spine_token is not None else decision.spine_id
        alf = alf_for(self.alf_key, spine) if linked and spine else None
        probability = round(min(max(decision.probability, 0.0), 1.0), 6)
        model_version = model_version or self.model_version
        decided_at = self.view.position if decided_at is None else decided_at
        if prev is not None and (
            prev["alf"],
            prev["status"],
            round(prev["match_probability"], 6),
        ) == (alf, int(status), probability):
            # Nothing a researcher sees changed: keep the published result, note the decision.
            rows.results.put(rows.session, token, {"decided_at": decided_at})
            return []
        prev_alf = None if prev is None else prev["alf"]
        prev_sequence = None if prev is None else int(prev["sequence"])
        sequence = 1 if prev_sequence is None else prev_sequence + 1
        # The stored row knows the type: the review API's process never saw records that
        # arrived after it started.
        rtype = str(prev["record_type"]) if prev is not None else self.incoming_types[token]
        rows.results.put(
            rows.session,
            token,
            {
                "record_type": rtype,
                "spine_token": spine if linked else None,
                "candidate_token": decision.candidate_id,
                "alf": alf,
                "status": int(status),
                "detail_status": decision.status,
                "match_probability": probability,
                "model_version": model_version,
                "sequence": sequence,
                "updated_at": _now(),
                "decided_at": decided_at,
            },
        )
        self._queue(rows, token, decision, status, model_version)
        if prev is not None and prev_alf != alf:
            self._audit(
                rows,
                "relinked",
                token,
                {
                    "from_alf": prev_alf,
                    "to_alf": alf,
                    "reason": reason.value,
                    "from_sequence": prev_sequence,
                    "to_sequence": sequence,
                },
            )
        self.stats["relinked"] += reason is not LinkReason.INITIAL
        event = LinkResultPublished(
            record_token=token,
            record_type=rtype,
            alf=alf,
            status=status,
            match_probability=probability,
            model_version=model_version,
            sequence=sequence,
            supersedes_sequence=prev_sequence,
            reason=reason,
        )
        return [
            frame(
                event,
                source=Service.LINK,
                event_id=result_event_id(token, sequence),
                topic=self.results_topic,
            )
        ]

    def _queue(
        self,
        rows: LinkRows,
        token: str,
        decision: LinkDecision,
        status: LinkStatus,
        model_version: str,
    ) -> None:
        row = rows.reviews.get(rows.session, token)
        if status is LinkStatus.REVIEW and decision.candidate_id:
            rows.reviews.put(
                rows.session,
                token,
                {
                    "candidate_token": decision.candidate_id,
                    "match_probability": decision.probability,
                    "state": "open",
                    "model_version": model_version,
                    "created_at": _now(),
                    "decided_at": None,
                    "decided_by": None,
                    "evidence": self._evidence(token, decision),
                },
            )
        elif row is not None and row["state"] == "open":
            rows.reviews.put(rows.session, token, {"state": "superseded", "decided_at": _now()})

    def _evidence(self, token: str, decision: LinkDecision) -> str | None:
        """What a clerical reviewer reads about a queued pair (``CompiledModel.explain``): the
        level each comparison reached and its weight, as the model that queued it saw them,
        and what the record's other candidates take from it (``with_competition``)."""
        pos = self.incoming.position_of(token)
        spine_pos = self.index.position_of(decision.candidate_id or "")
        if pos is None or spine_pos is None:
            return None
        explained = self.view.linker.compiled.explain(
            self.incoming.record(pos), self.index.record(spine_pos)
        )
        return json.dumps(with_competition(explained, decision), sort_keys=True)

    def _audit(self, rows: LinkRows, action: str, token: str, detail: dict[str, Any]) -> None:
        rows.audit(
            {
                "at": _now(),
                "action": action,
                "record_token": token,
                "detail": json.dumps(detail, sort_keys=True),
            }
        )

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot_if_due(self) -> Path | None:
        """Write a snapshot of the view when enough has changed since the last one, or when
        one on disk may still hold a person whose erasure the log has forgotten (idle).

        A snapshot never holds a row of a person an erasure excluded. The view goes on from
        the snapshot written unless that left out rows of an erasure some partition has not
        been checked past yet (their replaced versions still tell what the exclusion
        touched)."""
        if self.snapshots is None:
            return None
        index = self.view.index
        base = len(index.base) if index.base is not None else 0
        superseded = self.snapshots.any_below(self._superseded_below)
        if not superseded and len(index.delta) < max(self.snapshots.min_rows, base // 4):
            return None
        path = self.snapshots.write(
            index, erased=self.erasures, supersede_below=self._superseded_below
        )
        if path is None:
            return None
        pending = [tok for tok in self.erasures if tok not in self._forgotten]
        if not pending or not index.holds_any(pending):
            self.view.index = self.snapshots.load(path, self.view.model)
            self.view._linker = None
        return path

    # -- clerical review -----------------------------------------------------------------------

    def open_reviews(
        self, session: Session, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of open review items, oldest first (keyset on queued time and record
        token), and the next page's cursor; ``InvalidCursor`` for one this did not make."""
        q = t.review_queue.c
        return keyset_page(
            lambda stmt: session.execute(stmt).all(),
            select(t.review_queue).where(q.state == "open"),
            (q.created_at, q.record_token),
            limit=limit,
            cursor=cursor,
            item=lambda r: {
                "record_token": r.record_token,
                "candidate_token": r.candidate_token,
                "match_probability": r.match_probability,
                "model_version": r.model_version,
                "evidence": json.loads(r.evidence) if r.evidence else None,
            },
        )

    def decide(
        self, session: Session, token: str, *, accept: bool, reviewer: str
    ) -> list[OutgoingMessage]:
        """A reviewer accepts (the record gets the candidate's ALF) or rejects (unlinked);
        the decision is audited and re-published. Deciding again reverses it.

        :class:`RowsChanged` if the worker re-linked the record meanwhile (decide again on
        the fresh item)."""
        claim_rows.lock_record(session, self.input_topic, token)
        rows = LinkRows(session)
        row = rows.reviews.get(session, token)
        if row is None:
            raise KeyError(token)
        candidate = str(row["candidate_token"])
        prev = rows.results.get(session, token)
        decision = LinkDecision(
            token,
            candidate if accept else None,
            int(LinkStatus.CLERICAL_ACCEPTED if accept else 99),
            row["match_probability"],
            0.0,
            candidate,
        )
        status = LinkStatus.CLERICAL_ACCEPTED if accept else LinkStatus.UNLINKED
        out = self._store_and_publish(
            rows,
            token,
            decision,
            LinkReason.CLERICAL_DECISION,
            prev,
            status=status,
            spine_token=candidate if accept else None,
            # The reviewed decision's model, not this (API) process's idea of the current one.
            model_version=str(row["model_version"]),
            decided_at=None if prev is None else int(prev["decided_at"]),
        )
        rows.reviews.put(
            session,
            token,
            {
                "state": "accepted" if accept else "rejected",
                "decided_at": _now(),
                "decided_by": reviewer,
            },
        )
        self._audit(
            rows,
            "review-accepted" if accept else "review-rejected",
            token,
            {"candidate_token": candidate, "reviewer": reviewer},
        )
        rows.flush()
        return out
