"""Safe people: researchers and their accreditation (administrators), and audit checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, status
from sqlalchemy import select

from services.access.api.deps import forbidden, not_found, problems, today, unit
from services.access.api.schemas import (
    AccreditationIn,
    ResearcherIn,
    ResearcherOut,
    ResearcherPage,
)
from services.access.bootstrap import AccessContext
from services.access.domain.projects import Accreditation, Role, has_current_accreditation
from services.access.storage.models import ResearcherRow
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["researchers_router"]


def _out(row: ResearcherRow) -> ResearcherOut:
    return ResearcherOut(
        subject=row.subject,
        display_name=row.display_name,
        organisation=row.organisation,
        accredited_until=row.accredited_until,
        revoked=row.revoked,
        accredited=has_current_accreditation(
            Accreditation(row.subject, row.accredited_until, row.revoked), today()
        ),
    )


def researchers_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["researchers"], route_class=AuthenticatedRoute)

    def require_admin(principal: Principal, object_id: str) -> None:
        if not principal.has_role(Role.ADMIN.value):
            raise forbidden("administrators only", "researcher", object_id)

    @router.post(
        "/researchers",
        status_code=status.HTTP_201_CREATED,
        summary="Register or update a researcher and their accreditation (admin).",
        responses=problems(400, 403, 422),
    )
    def upsert_researcher(
        body: ResearcherIn, principal: Principal = Depends(auth)
    ) -> ResearcherOut:
        with unit(ctx, principal, "researcher.upsert") as s:
            require_admin(principal, body.subject)
            row = s.get(ResearcherRow, body.subject)
            if row is None:
                row = ResearcherRow(subject=body.subject, display_name=body.display_name)
                s.add(row)
            row.display_name = body.display_name
            row.organisation = body.organisation
            row.accredited_until = body.accredited_until
            row.revoked = False
            row.updated_at = datetime.now(UTC)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="researcher.upsert",
                object_type="researcher",
                object_id=body.subject,
                detail={"accredited_until": str(body.accredited_until)},
            )
            return _out(row)

    @router.get(
        "/researchers",
        summary="Every researcher (admin), oldest registration first, a page at a time.",
        responses=problems(403, 422),
    )
    def list_researchers(
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> ResearcherPage:
        with unit(ctx, principal, "researcher.list") as s:
            require_admin(principal, "-")
            items, after = keyset_page(
                s.scalars,
                select(ResearcherRow),
                (ResearcherRow.created_at, ResearcherRow.subject),
                limit=limit,
                cursor=cursor,
                item=_out,
            )
            return ResearcherPage(items=items, next_cursor=after)

    @router.get(
        "/researchers/{subject}",
        summary="One researcher (admin, or themselves).",
        responses=problems(404),
    )
    def get_researcher(subject: str, principal: Principal = Depends(auth)) -> ResearcherOut:
        with unit(ctx, principal, "researcher.read") as s:
            if subject != principal.subject and not principal.has_role(Role.ADMIN.value):
                raise not_found("researcher", subject)
            row = s.get(ResearcherRow, subject)
            if row is None:
                raise not_found("researcher", subject)
            return _out(row)

    @router.put(
        "/researchers/{subject}/accreditation",
        summary="Set or withdraw a researcher's accreditation (admin).",
        responses=problems(400, 403, 404, 422),
    )
    def set_accreditation(
        subject: str, body: AccreditationIn, principal: Principal = Depends(auth)
    ) -> ResearcherOut:
        with unit(ctx, principal, "researcher.accreditation") as s:
            require_admin(principal, subject)
            row = s.get(ResearcherRow, subject)
            if row is None:
                raise not_found("researcher", subject)
            row.accredited_until = body.accredited_until
            row.revoked = body.revoked
            row.updated_at = datetime.now(UTC)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="researcher.accreditation",
                object_type="researcher",
                object_id=subject,
                detail={"accredited_until": str(body.accredited_until), "revoked": body.revoked},
            )
            return _out(row)

    @router.get(
        "/audit/verify",
        summary="Verify the audit chain against the signed checkpoints (admin).",
        tags=["audit"],
        responses=problems(403),
    )
    def verify_audit(principal: Principal = Depends(auth)) -> dict[str, Any]:
        with unit(ctx, principal, "audit.verify"):
            if not principal.has_role(Role.ADMIN.value):
                raise forbidden("administrators only", "audit", "-")
        return ctx.audit.verify(ctx.engine).as_dict()

    return router
