"""Link's clerical-review routes (``/v1/review``): a reviewer lists open items a page at a
time and accepts or rejects them.

Every route needs a bearer token carrying the reviewer role, checked before the body is read
(``AuthenticatedRoute``). The reviewer a decision records is the token's subject, never
something the caller sends. Only pseudonymous tokens and probabilities are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from contracts.events.common import RecordToken
from services.link.rows import RowsChanged
from services.link.service import LinkService
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.bus.api import Producer
from services.runtime.db import transaction
from services.runtime.pagination import Page, PageCursor, PageLimit
from services.runtime.problems import problem_type
from services.runtime.publishing import publish_all

__all__ = ["Decision", "DecisionMade", "ReviewItem", "ReviewPage", "Reviews", "review_router"]

_EXAMPLE_RECORD = "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"
_EXAMPLE_CANDIDATE = "c3BpbmVwZXJzb250b2tlbjEyMzQ1Njc4OTBhYmNkZWZn"


@dataclass(frozen=True, slots=True)
class Reviews:
    """What the routes need: the link service, sessions on its database, a bus producer."""

    service: LinkService
    sessions: sessionmaker[Session]
    producer: Producer


class ReviewItem(BaseModel):
    """One open clerical-review item: a record and the spine candidate it may be."""

    model_config = ConfigDict(frozen=True)

    record_token: str = Field(
        description="Pseudonymous token of the record under review.", examples=[_EXAMPLE_RECORD]
    )
    candidate_token: str = Field(
        description="Pseudonymous token of the spine record it may be.",
        examples=[_EXAMPLE_CANDIDATE],
    )
    match_probability: float = Field(
        description="The model's probability that the two are one person.", examples=[0.42]
    )
    model_version: str = Field(
        description="Version of the linkage model that queued it.", examples=["fs-1"]
    )
    evidence: dict[str, Any] | None = Field(
        None,
        description="Why the pair scored what it did, with no identifier: the prior (bits), "
        "each comparison's level that held and its match weight (bits), a guard's cap if one "
        "applied, the final log2-odds and probability. None for items queued before it was kept.",
        examples=[
            {
                "prior": -9.2,
                "comparisons": [
                    {"comparison": "forename", "level": "nickname", "weight": 5.1},
                    {"comparison": "date_of_birth", "level": "swapped", "weight": 4.0},
                ],
                "guard_cap": None,
                "log2_odds": -0.1,
                "probability": 0.48,
            }
        ],
    )


class ReviewPage(Page[ReviewItem]):
    """A page of open clerical-review items, oldest first."""


class Decision(BaseModel):
    """A reviewer's decision on one queued record."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    accept: bool = Field(
        description="True links the record to the candidate; false leaves it unlinked.",
        examples=[True],
    )


class DecisionMade(BaseModel):
    """What a decision did: the record's new result is published and the decision audited."""

    model_config = ConfigDict(frozen=True)

    record_token: str = Field(description="The record decided on.", examples=[_EXAMPLE_RECORD])
    accepted: bool = Field(description="Whether the link was accepted.", examples=[True])
    decided_by: str = Field(
        description="The reviewer, from the bearer token's subject.", examples=["rita"]
    )
    published: int = Field(
        description="Link results published (0 when the record's result did not change).",
        examples=[1],
    )


def _problem(description: str) -> dict[str, Any]:
    # The app factory gives every 4xx its problem+json media type and schema (and adds 401).
    return {"description": description}


def review_router(
    *,
    reviews: Callable[[], Reviews],
    principal: Callable[..., Principal],
    reviewer_role: str,
) -> APIRouter:
    """``/v1/review`` routes, wired to the service and the bearer check."""
    router = APIRouter(
        prefix="/v1/review",
        tags=["review"],
        route_class=AuthenticatedRoute,
        responses={
            403: _problem(f"The token lacks the {reviewer_role!r} role (`not-a-reviewer`).")
        },
    )

    # Dependencies as defaults, not in ``Annotated``: this module postpones annotations, and
    # FastAPI cannot resolve a name local to this function from an annotation string.
    def reviewer(caller: Principal = Depends(principal)) -> Principal:
        if not caller.has_role(reviewer_role):
            raise HTTPException(
                403,
                {
                    "type": problem_type("not-a-reviewer"),
                    "title": "Forbidden",
                    "detail": f"the token lacks the {reviewer_role!r} role",
                },
            )
        return caller

    @router.get(
        "",
        summary="Open clerical-review items, oldest first, a page at a time.",
        responses={422: _problem("The limit or cursor is not valid (`invalid-cursor`).")},
    )
    def list_reviews(
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        _reviewer: Principal = Depends(reviewer),
    ) -> ReviewPage:
        """Pseudonymous record and candidate tokens and the match probability only."""
        r = reviews()
        with r.sessions() as session:
            items, after = r.service.open_reviews(session, limit=limit, cursor=cursor)
        return ReviewPage(items=[ReviewItem(**item) for item in items], next_cursor=after)

    @router.post(
        "/{record_token}",
        summary="Accept or reject a queued link (deciding again reverses it).",
        responses={
            400: _problem("The body cannot be read (not UTF-8)."),
            404: _problem("No review item for this record (`review-not-found`)."),
            409: _problem(
                "The worker re-linked the record meanwhile: read the queue again "
                "(`relinked-meanwhile`)."
            ),
            422: _problem("The decision is not valid."),
        },
    )
    def decide(
        record_token: RecordToken,
        body: Decision,
        who: Principal = Depends(reviewer),
    ) -> DecisionMade:
        """The record's new result is published, and the decision audited under the token's
        subject, in one transaction: if publishing fails, nothing is recorded."""
        r = reviews()
        with transaction(r.sessions) as session:
            try:
                messages = r.service.decide(
                    session, record_token, accept=body.accept, reviewer=who.subject
                )
            except KeyError:
                raise HTTPException(
                    404,
                    {
                        "type": problem_type("review-not-found"),
                        "title": "Not found",
                        "detail": "no review item for this record",
                    },
                ) from None
            except RowsChanged:
                raise HTTPException(
                    409,
                    {
                        "type": problem_type("relinked-meanwhile"),
                        "title": "Conflict",
                        "detail": "the record was re-linked meanwhile; read the queue again",
                    },
                ) from None
            publish_all(r.producer, messages)
            r.producer.flush()
        return DecisionMade(
            record_token=record_token,
            accepted=body.accept,
            decided_by=who.subject,
            published=len(messages),
        )

    return router
