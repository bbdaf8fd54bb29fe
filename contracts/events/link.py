"""Link's event: the anonymous linking field a record resolved to, with how sure link is."""

from __future__ import annotations

import uuid
from enum import IntEnum, StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from contracts.events.common import Base64UrlToken, Event, RecordToken
from contracts.objections import ObjectionKind
from contracts.records import RecordType

__all__ = [
    "LINKED_STATUSES",
    "LinkReason",
    "LinkResultPublished",
    "LinkStatus",
    "PersonObjected",
]


class LinkStatus(IntEnum):
    """How a record was (or was not) linked.

    1, 4 and 39 are SAIL's ALF_STS_CD codes as analysts know them; 50 and above are fjo's own.
    """

    NHS_NUMBER = 1
    """Matched on an NHS number that passes its check digit."""
    EXACT_FIVE_FIELDS = 4
    """Exact on surname, forename, date of birth, sex and postcode."""
    EXACT_FOUR_FORENAME_VARIANT = 39
    """Exact on four fields, forename by variant lexicon or fuzzy probability >= 0.9."""
    PROBABILISTIC = 50
    """Fellegi-Sunter match above the accept threshold."""
    CLERICAL_ACCEPTED = 60
    """Accepted by a clerical reviewer."""
    REVIEW = 90
    """In the review band, awaiting clerical review: no ALF yet."""
    OBJECTED = 95
    """Withdrawn by an objection or erasure (of the record, or of the spine person it was
    linked to): no ALF, and no later re-link brings one back. Not 97/98: those are link's
    internal detail codes of unlinked decisions."""
    UNLINKED = 99
    """No acceptable match: no ALF."""


LINKED_STATUSES = frozenset(
    {
        LinkStatus.NHS_NUMBER,
        LinkStatus.EXACT_FIVE_FIELDS,
        LinkStatus.EXACT_FOUR_FORENAME_VARIANT,
        LinkStatus.PROBABILISTIC,
        LinkStatus.CLERICAL_ACCEPTED,
    }
)
"""Statuses that carry an ALF."""


class LinkReason(StrEnum):
    """Why this result was published."""

    INITIAL = "initial"
    SPINE_CHANGED = "spine-changed"
    MODEL_RETRAINED = "model-retrained"
    CLERICAL_DECISION = "clerical-decision"
    MERGE = "merge"
    SPLIT = "split"
    OBJECTION = "objection"


ModelVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]

_EXAMPLE_RECORD_PSEUDONYM = "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"
_ALF_EXAMPLE = "YWxmdG9rZW5hbGZ0b2tlbmFsZnRva2Vu"


class LinkResultPublished(Event):
    """The current link of one record; a later sequence supersedes. Keyed by record token."""

    event_type: ClassVar[str] = "link.result-published.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_token": _EXAMPLE_RECORD_PSEUDONYM,
                    "record_type": "child",
                    "alf": _ALF_EXAMPLE,
                    "status": 4,
                    "match_probability": 1.0,
                    "model_version": "fs-2024.05",
                    "sequence": 2,
                    "supersedes_sequence": 1,
                    "reason": "model-retrained",
                }
            ]
        }
    )

    record_token: RecordToken = Field(
        description="The linked record's token.", examples=[_EXAMPLE_RECORD_PSEUDONYM]
    )
    record_type: RecordType = Field(description="The record kind.", examples=["child"])
    alf: Base64UrlToken | None = Field(
        default=None,
        description="Anonymous linking field of the spine person; only with a linked status.",
        examples=[_ALF_EXAMPLE],
    )
    status: LinkStatus = Field(description="Link status code (ALF_STS_CD).", examples=[4])
    match_probability: float = Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Match probability on a 0-1 scale (ALF_MTCH_PCT).",
        examples=[0.97],
    )
    model_version: ModelVersion = Field(
        description="Version of the linkage model and rules that produced this result.",
        examples=["fs-2024.05"],
    )
    sequence: int = Field(
        ge=1,
        description="This result's number for the record token, from 1, increasing.",
        examples=[2],
    )
    supersedes_sequence: int | None = Field(
        default=None,
        ge=1,
        description="The sequence this result replaces, lower than sequence.",
        examples=[1],
    )
    reason: LinkReason = Field(
        default=LinkReason.INITIAL,
        description="Why this result was published.",
        examples=["initial"],
    )

    @field_validator("status")
    @classmethod
    def _status_agrees_with_alf(cls, value: LinkStatus, info: ValidationInfo) -> LinkStatus:
        if "alf" not in info.data:
            return value
        linked = value in LINKED_STATUSES
        has_alf = info.data["alf"] is not None
        if linked and not has_alf:
            raise PydanticCustomError("alf_missing", "a linked status needs an alf")
        if has_alf and not linked:
            raise PydanticCustomError(
                "alf_unexpected", "status {status} carries no alf", {"status": int(value)}
            )
        return value

    @field_validator("supersedes_sequence")
    @classmethod
    def _supersedes_an_earlier_result(cls, value: int | None, info: ValidationInfo) -> int | None:
        sequence = info.data.get("sequence")
        if value is not None and isinstance(sequence, int) and value >= sequence:
            raise PydanticCustomError(
                "sequence_order", "supersedes_sequence must be lower than sequence"
            )
        return value

    def partition_key(self) -> str:
        """The record token."""
        return self.record_token


class PersonObjected(Event):
    """A spine person's objection, erasure request or opt-out, by their ALF: what access
    needs to act on every record of the person (for an opt-out link keeps linking them).

    On ``link.results.v1``, keyed by the ALF (never equal to a record token: another key).
    """

    event_type: ClassVar[str] = "link.person-objected.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receipt_id": "5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10",
                    "kind": "opt-out",
                    "alf": _ALF_EXAMPLE,
                }
            ]
        }
    )

    receipt_id: uuid.UUID = Field(
        description="Ingest's receipt id of the request.",
        examples=["5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10"],
    )
    kind: ObjectionKind = Field(description="What was asked.", examples=["opt-out"])
    alf: Base64UrlToken = Field(
        description="Anonymous linking field of the spine person.", examples=[_ALF_EXAMPLE]
    )

    def partition_key(self) -> str:
        """The ALF."""
        return self.alf
