"""What became of objections, erasure requests and opt-outs (administrators): counts that
reconcile with ingest's (received = applied + refused, each refusal with its reason)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from services.access.api.deps import forbidden, problems, unit
from services.access.bootstrap import AccessContext
from services.access.domain.projects import Role
from services.access.storage.models import ExclusionRow, ExtractRow, ObjectionRow
from services.runtime.auth import AuthenticatedRoute, Principal

__all__ = ["ObjectionSummary", "objections_router"]


class ObjectionSummary(BaseModel):
    """Requests access has seen, what it did with them, and what they left behind."""

    received: int = Field(description="Requests that reached access (each receipt once).")
    applied: int = Field(description="Requests applied.")
    refused: int = Field(description="Requests refused (see refused_by_reason).")
    refused_by_reason: dict[str, int] = Field(
        description="Refusals by reason, e.g. unknown-record: fjo never held the record."
    )
    by_kind: dict[str, int] = Field(description="Requests by kind (objection, erasure, opt-out).")
    excluded_records: int = Field(description="Record tokens taken out of the store.")
    excluded_people: dict[str, int] = Field(description="ALFs excluded, by kind.")
    extracts_flagged: int = Field(description="Extracts flagged for rebuild.")


def objections_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["objections"], route_class=AuthenticatedRoute)

    @router.get(
        "/objections/summary",
        summary="Objections, erasure requests and opt-outs: received = applied + refused "
        "(administrators).",
        responses=problems(403),
    )
    def summary(principal: Principal = Depends(auth)) -> ObjectionSummary:
        with unit(ctx, principal, "objections.summary") as s:
            if not principal.has_role(Role.ADMIN.value):
                raise forbidden("administrators only", "objections", "summary")
            o = ObjectionRow.__table__.c
            outcomes = dict(s.execute(select(o.outcome, func.count()).group_by(o.outcome)).all())
            reasons = s.execute(
                select(o.refusal_reason, func.count())
                .where(o.outcome == "refused")
                .group_by(o.refusal_reason)
            ).all()
            kinds = dict(s.execute(select(o.kind, func.count()).group_by(o.kind)).all())
            e = ExclusionRow.__table__.c
            records = s.execute(
                select(func.count(func.distinct(e.value))).where(e.scope == "record")
            ).scalar_one()
            people = dict(
                s.execute(
                    select(e.kind, func.count()).where(e.scope == "alf").group_by(e.kind)
                ).all()
            )
            x = ExtractRow.__table__.c
            flagged = s.execute(
                select(func.count()).select_from(ExtractRow).where(x.rebuild_reason.is_not(None))
            ).scalar_one()
            applied, refused = int(outcomes.get("applied", 0)), int(outcomes.get("refused", 0))
            return ObjectionSummary(
                received=applied + refused,
                applied=applied,
                refused=refused,
                refused_by_reason={str(r): int(n) for r, n in reasons},
                by_kind={str(k): int(n) for k, n in kinds.items()},
                excluded_records=int(records),
                excluded_people={str(k): int(n) for k, n in people.items()},
                extracts_flagged=int(flagged),
            )

    return router
