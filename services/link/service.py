"""The link service's use cases: keep the encoded spine, link each incoming record, publish.

One :class:`LinkService` per worker process holds the spine index in memory (rebuilt from
the link database at start) and the model. Handlers call it inside the worker's transaction,
so the stored result, the review-queue row, the audit row and the processed-message marker
commit together; the events it returns are published before the commit.
"""

from __future__ import annotations

import gc
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from contracts.events import (
    LINKED_STATUSES,
    LinkageKeysPublished,
    LinkReason,
    LinkResultPublished,
    LinkStatus,
)
from contracts.services import Service
from services.link import storage as t
from services.link.domain import (
    REVIEW,
    CompiledModel,
    EncodedRecord,
    LinkageModel,
    LinkDecision,
    Linker,
    SpineIndex,
    default_model,
    estimate_u,
    with_history,
)
from services.link.domain.alf import alf_for
from services.link.domain.decide import with_competition
from services.link.rows import LinkRows
from services.runtime.publishing import OutgoingMessage, derived_event_id, frame

__all__ = ["LinkService", "contract_status", "result_event_id"]

log = logging.getLogger("fjo.link")

_EVENT_NS = uuid.UUID("0b3f6a52-7c1d-4e8b-9f2a-5d6c7e8f9a01")
SPINE_TYPE = "spine-person"


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


# Built once: a spine load runs it for every person (with no incoming records, it is all
# that costs). Another link replica's results are in the database only, hence a query.
_POINTING_AT = select(t.results.c.record_token).where(
    (t.results.c.spine_token == bindparam("spine"))
    | (t.results.c.candidate_token == bindparam("spine"))
)


def _now() -> datetime:
    return datetime.now(UTC)


class LinkService:
    """The spine index, the model and the decisions of one worker (or API) process."""

    def __init__(
        self,
        alf_key: bytes,
        model: LinkageModel | None = None,
        *,
        estimate_u_from_spine: bool | None = None,
        results_topic: str | None = None,
    ) -> None:
        self.alf_key = alf_key
        self.results_topic = results_topic
        self.base_model = model or default_model()
        trained = bool(self.base_model.notes.get("training"))
        self.estimate_u = (not trained) if estimate_u_from_spine is None else estimate_u_from_spine
        self.index = SpineIndex(self.base_model)
        self.incoming = SpineIndex(self.base_model, self.index.schema, self.index.interner)
        self.incoming_types: dict[str, str] = {}
        self._linker: Linker | None = None
        self._estimated_at = 0
        self._spine_changes = 0  # spine people added or replaced so far
        self._speculative_at: int | None = None  # _spine_changes when warm() fitted

    # -- loading ---------------------------------------------------------------------------

    def load(self, session: Session) -> None:
        """Rebuild the in-memory indexes from the link database."""
        for token, keys in session.execute(
            select(t.spine_records.c.record_token, t.spine_records.c.linkage)
        ):
            self.index.add(EncodedRecord.from_json(token, keys))
        for token, rtype, keys in session.execute(
            select(
                t.incoming_keys.c.record_token,
                t.incoming_keys.c.record_type,
                t.incoming_keys.c.linkage,
            )
        ):
            self.incoming.add(EncodedRecord.from_json(token, keys))
            self.incoming_types[token] = rtype
        # The index is long-lived and acyclic: keep it out of every later GC pass.
        gc.freeze()
        self._linker = None

    def warm(self) -> None:
        """Fit the model to the spine as it is now, if a record linked now would need that
        (the worker calls this when a poll brings nothing), so the first record after a spine
        load does not wait seconds for ``estimate_u``.

        The fit is speculative: if the spine changes before a record uses it, the record
        refits, exactly as without the warm-up. So decisions depend on the spine a record
        meets, never on when the worker happened to be idle.
        """
        if len(self.index) and self._stale():
            self._fit()
            self._speculative_at = self._spine_changes

    @property
    def model_version(self) -> str:
        return self.linker.compiled.model.version

    @property
    def linker(self) -> Linker:
        speculation_lost = (
            self._speculative_at is not None and self._speculative_at != self._spine_changes
        )
        if self._stale() or speculation_lost:
            self._fit()
        self._speculative_at = None
        assert self._linker is not None
        self._linker.refresh()
        return self._linker

    def _stale(self) -> bool:
        n = len(self.index)
        return self._linker is None or (
            self.estimate_u and n >= 20 and abs(n - self._estimated_at) > 0.1 * max(n, 1)
        )

    def _fit(self) -> None:
        n = len(self.index)
        model = self.base_model
        if self.estimate_u and n >= 20:
            model = estimate_u(model, self.index, pairs=min(200_000, 50 * n))
            model = replace(model, version=f"{model.version}-u{n}")
            self._estimated_at = n
        self.index.model = model
        self._linker = Linker(CompiledModel(model, self.index.schema), self.index)

    # -- events ----------------------------------------------------------------------------

    def on_linkage_keys(
        self, session: Session, event: LinkageKeysPublished, rows: LinkRows | None = None
    ) -> list[OutgoingMessage]:
        """Store the keys; a spine person updates the spine, any other record is linked.

        With ``rows`` (a run's :class:`LinkRows`), writes wait for the caller's
        ``rows.flush()``; without, they are written before this returns.
        """
        if rows is None:
            rows = LinkRows(session)
            out = self.on_linkage_keys(session, event, rows)
            rows.flush()
            return out
        token = event.record_token
        rec = EncodedRecord.from_keys(token, event.keys())
        if event.record_type.value == SPINE_TYPE:
            return self._upsert_spine(session, event, rec, rows)
        row = rows.incoming.get(session, token)
        if row is not None and row["record_version"] > event.record_version:
            return []  # an older version arriving late changes nothing
        rows.incoming.put(
            session,
            token,
            {
                "record_type": event.record_type.value,
                "record_version": event.record_version,
                "linkage": rec.to_json(),
            },
        )
        self.incoming.add(rec)
        self.incoming_types[token] = event.record_type.value
        return self._relink(rows, token, LinkReason.INITIAL, rec)

    def _upsert_spine(
        self, session: Session, event: LinkageKeysPublished, rec: EncodedRecord, rows: LinkRows
    ) -> list[OutgoingMessage]:
        token = event.record_token
        row = rows.spine.get(session, token)
        if row is not None and row["record_version"] >= event.record_version:
            return []
        rows.history(
            {
                "record_token": token,
                "record_version": event.record_version,
                "linkage": rec.to_json(),
                "recorded_at": _now(),
            }
        )
        if row is not None:
            rec = with_history(rec, EncodedRecord.from_json(token, row["linkage"]))
        rows.spine.put(
            session,
            token,
            {
                "record_version": event.record_version,
                "key_version": event.key_version,
                "linkage": rec.to_json(),
                "updated_at": _now(),
            },
        )
        self.index.add(rec)
        self._spine_changes += 1
        # Re-link what this person may change: records pointing at them, and records that
        # share a blocking key with them (they may now find a better candidate).
        rows.flush()  # the query below must see this run's results
        affected = set(session.execute(_POINTING_AT, {"spine": token}).scalars())
        compact = self.incoming.schema.compact(rec, self.incoming.interner, grow=False)
        affected |= {self.incoming.ids[p] for p in self.incoming.candidates(compact)}
        rows.prefetch(affected)
        out: list[OutgoingMessage] = []
        for other in sorted(affected):
            out += self._relink(rows, other, LinkReason.SPINE_CHANGED)
        return out

    # -- linking ---------------------------------------------------------------------------

    def _relink(
        self,
        rows: LinkRows,
        token: str,
        reason: LinkReason,
        rec: EncodedRecord | None = None,
    ) -> list[OutgoingMessage]:
        pos = self.incoming.position.get(token)
        if pos is None:
            return []
        decision = self.linker.link_compact(token, self.incoming.records[pos])
        prev = rows.results.get(rows.session, token)
        if (
            prev is not None
            and prev["status"] == LinkStatus.CLERICAL_ACCEPTED
            and (reason is LinkReason.SPINE_CHANGED and prev["spine_token"] is not None)
        ):
            return []  # a reviewer's decision stands until a reviewer changes it
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
    ) -> list[OutgoingMessage]:
        status = status or contract_status(decision.status)
        linked = status in (
            LinkStatus.NHS_NUMBER,
            LinkStatus.EXACT_FIVE_FIELDS,
            LinkStatus.EXACT_FOUR_FORENAME_VARIANT,
            LinkStatus.PROBABILISTIC,
            LinkStatus.CLERICAL_ACCEPTED,
        )
        spine = spine_token if spine_token is not None else decision.spine_id
        alf = alf_for(self.alf_key, spine) if linked and spine else None
        probability = round(min(max(decision.probability, 0.0), 1.0), 6)
        model_version = model_version or self.model_version
        if prev is not None and (
            prev["alf"],
            prev["status"],
            round(prev["match_probability"], 6),
            prev["model_version"],
        ) == (alf, int(status), probability, model_version):
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
        pos = self.incoming.position.get(token)
        spine_pos = self.index.position.get(decision.candidate_id or "")
        if pos is None or spine_pos is None or self._linker is None:
            return None
        explained = self._linker.compiled.explain(
            self.incoming.records[pos], self.index.records[spine_pos]
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

    # -- clerical review -------------------------------------------------------------------

    def open_reviews(self, session: Session, limit: int = 100) -> list[dict[str, Any]]:
        rows = session.execute(
            select(t.review_queue)
            .where(t.review_queue.c.state == "open")
            .order_by(t.review_queue.c.created_at)
            .limit(limit)
        )
        return [
            {
                "record_token": r.record_token,
                "candidate_token": r.candidate_token,
                "match_probability": r.match_probability,
                "model_version": r.model_version,
                "evidence": json.loads(r.evidence) if r.evidence else None,
            }
            for r in rows
        ]

    def decide(
        self, session: Session, token: str, *, accept: bool, reviewer: str
    ) -> list[OutgoingMessage]:
        """A reviewer accepts (the record gets the candidate's ALF) or rejects (unlinked);
        the decision is audited and re-published. Deciding again reverses it."""
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
