"""A replica's view of the spine: the spine log applied up to a position.

Two replicas that have applied the log up to the same position hold the same spine people
(every version, with the positions they were born and died at), the same term frequencies
and the same model, so they take the same decision for the same record: the decision is a
function of the record and the position. The view is pure: it is handed log entries (their
position, kind and payload) and never reads a database itself.

Models are log entries too. The base model (the default one, or a trained one being
deployed) and each re-estimation of u from the spine (an untrained base is refitted when the
spine has grown or shrunk by more than a tenth since the last fit) get a position; a model
that differs from the current one is a *model change*, after which every record decided
before it is decided again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from services.link.domain.decide import Linker
from services.link.domain.estimate import estimate_u
from services.link.domain.index import SpineIndex
from services.link.domain.model import LinkageModel
from services.link.domain.records import EncodedRecord, KeySchema
from services.link.domain.scoring import CompiledModel

__all__ = ["ModelEntry", "SpineView", "model_payload", "parse_model_payload"]

PERSON = "person"
MODEL = "model"
EXCLUDE = "exclude"
REFIT_SHARE = 0.1
"""An untrained model is refitted when the spine size moved by more than this share."""
MIN_SPINE_TO_FIT = 20


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model as the log holds it: the model, whether it is a base (deployed) model, and
    the spine size it was fitted to (None: not fitted to this spine)."""

    model: LinkageModel
    base: bool
    fitted_spine: int | None


def model_payload(entry: ModelEntry) -> str:
    return json.dumps(
        {
            "model": entry.model.to_dict(),
            "base": entry.base,
            "fitted_spine": entry.fitted_spine,
        },
        sort_keys=True,
        default=str,
    )


def parse_model_payload(payload: str) -> ModelEntry:
    data = json.loads(payload)
    return ModelEntry(
        LinkageModel.from_dict(data["model"]), bool(data["base"]), data.get("fitted_spine")
    )


def _layout(schema: KeySchema) -> tuple[tuple[str, ...], ...]:
    return (schema.token_keys, schema.list_keys, schema.bloom_keys)


class SpineView:
    """The spine index, the base model and the current model, at one log position."""

    def __init__(self, base: LinkageModel, *, estimate_u_from_spine: bool | None = None) -> None:
        self.base = base
        self.model = base
        self.fitted_spine: int | None = None
        self.model_position = 0
        """Position of the last model change (0: the view's initial model)."""
        trained = bool(base.notes.get("training"))
        self.estimate_u = (not trained) if estimate_u_from_spine is None else estimate_u_from_spine
        self.index = SpineIndex(base)
        self._linker: Linker | None = None
        self.rebuild_needed = False
        """A model with another key layout arrived: the index must be rebuilt from the log."""
        self.excluded: dict[str, int] = {}
        """Spine people an objection or erasure took out of linkage, with the position it
        did: no later version of theirs enters the view, no record links to them."""

    @property
    def position(self) -> int:
        return self.index.log_position

    # -- applying the log -------------------------------------------------------------------

    def apply_person(self, position: int, record_token: str, payload: str) -> None:
        """A spine person's version (its stored record JSON) born at ``position``."""
        if record_token not in self.excluded:
            rec = EncodedRecord.from_json(record_token, payload)
            self.index.add(rec, position)
        self.index.log_position = position

    def apply_exclusion(self, position: int, record_token: str) -> None:
        """A spine person leaves the spine at ``position`` (an objection or erasure): their
        current version dies there, and no later version of theirs is applied."""
        self.excluded.setdefault(record_token, position)
        self.index.discard(record_token, position)
        self.index.log_position = position

    def excluded_between(self, after: int, upto: int) -> set[str]:
        """Spine people excluded at a position in ``(after, upto]``."""
        return {tok for tok, at in self.excluded.items() if after < at <= upto}

    def apply_people(self, entries: list[tuple[int, str, str]]) -> None:
        """Many ``(position, record_token, payload)`` at once (loading a log)."""
        if not entries:
            return
        schema = self.index.schema
        self.apply_versions(
            [
                (pos, tok, schema.compact(EncodedRecord.from_json(tok, p)))
                for pos, tok, p in entries
                if tok not in self.excluded
            ]
        )
        self.index.log_position = entries[-1][0]

    def apply_versions(self, entries: list[tuple[int, str, tuple]]) -> None:
        """Many ``(position, record_token, compact record)`` at once: :meth:`apply_people`
        for a caller that has compacted the versions already (to see what they touch)."""
        last = entries[-1][0] if entries else None
        entries = [e for e in entries if e[1] not in self.excluded]
        if entries:
            self.index.add_many(
                [tok for _, tok, _ in entries],
                [c for _, _, c in entries],
                [pos for pos, _, _ in entries],
            )
        if last is not None:
            self.index.log_position = last

    def apply_model(self, position: int, entry: ModelEntry) -> bool:
        """A model entry at ``position``; True when it changed the model in force."""
        self.index.log_position = position
        if entry.base:
            self.base = entry.model
            trained = bool(entry.model.notes.get("training"))
            self.estimate_u = not trained
        changed = entry.model != self.model
        self.fitted_spine = entry.fitted_spine
        if not changed:
            return False
        if _layout(KeySchema(entry.model)) != _layout(self.index.schema):
            self.rebuild_needed = True
        self.model = entry.model
        if not self.rebuild_needed:
            self.index.model = entry.model
        self.model_position = position
        self._linker = None
        return True

    # -- deciding -----------------------------------------------------------------------------

    @property
    def linker(self) -> Linker:
        """The linker of the current model on this view (term frequencies refreshed)."""
        if self._linker is None:
            self._linker = Linker(CompiledModel(self.model, self.index.schema), self.index)
        self._linker.refresh()
        return self._linker

    def stale(self) -> bool:
        """Whether the model in force must be refitted before a record is decided on this
        spine (a function of the view alone, so every replica agrees)."""
        if not self.estimate_u:
            return False
        n = len(self.index)
        if n < MIN_SPINE_TO_FIT:
            return False
        if self.fitted_spine is None:
            return True
        return abs(n - self.fitted_spine) > REFIT_SHARE * n

    def fit(self) -> ModelEntry:
        """u re-estimated from this spine (the same spine gives the same model anywhere)."""
        n = len(self.index)
        model = estimate_u(self.base, self.index, pairs=min(200_000, 50 * n))
        model = replace(model, version=f"{self.base.version}-u{n}")
        return ModelEntry(model, base=False, fitted_spine=n)

    def describe(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "spine": len(self.index),
            "versions": self.index.rows,
            "model": self.model.version,
            "model_position": self.model_position,
        }
