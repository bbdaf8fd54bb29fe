"""Safe outputs: submit an aggregate table, automated checks, two-person release."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    authorised_data,
    caller_facts,
    conflict,
    forbidden,
    load_project,
    not_found,
    problems,
    refused_for,
    reviewable,
    unit,
)
from services.access.api.schemas import OutputIn, OutputOut, OutputPage, ReviewIn
from services.access.bootstrap import AccessContext
from services.access.domain.output_checks import Cell, TableKind, check_table
from services.access.domain.policy import (
    Refusal,
    output_read_refusal,
    output_review_refusal,
)
from services.access.domain.projects import Role
from services.access.storage.models import OutputReviewRow, OutputRow
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["REQUIRED_APPROVALS", "outputs_router"]

REQUIRED_APPROVALS = 2
"""Two independent checkers release an output; neither may be its author or on its project."""


def _out(s: Any, row: OutputRow) -> OutputOut:
    reviews = s.execute(
        select(OutputReviewRow)
        .where(OutputReviewRow.output_id == row.id)
        .order_by(OutputReviewRow.at)
    ).scalars()
    return OutputOut(
        id=row.id,
        project_id=row.project_id,
        author=row.author,
        title=row.title,
        kind=row.kind,
        preset=row.preset,
        state=row.state,
        checks=row.checked,
        reviews=[
            {"checker": r.checker, "decision": r.decision, "comment": r.comment, "at": r.at}
            for r in reviews
        ],
        created_at=row.created_at,
        released_at=row.released_at,
    )


def outputs_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["outputs"], route_class=AuthenticatedRoute)

    def load_output(s: Session, project_id: str, output_id: str) -> OutputRow:
        row = s.get(OutputRow, output_id)
        if row is None or row.project_id != project_id:
            raise not_found("output", output_id, project_id)
        return row

    @router.post(
        "/projects/{project_id}/outputs",
        status_code=status.HTTP_201_CREATED,
        summary="Submit an aggregate table for release; the automated checks run at once.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def submit_output(
        project_id: str, body: OutputIn, principal: Principal = Depends(auth)
    ) -> OutputOut:
        with unit(ctx, principal, "output.submit") as s:
            authorised_data(s, principal, project_id, "approved members of an active project only")
            try:
                checked = check_table(
                    [Cell(c.row, c.col, c.count, c.value, tuple(c.top)) for c in body.cells],
                    kind=TableKind(body.kind),
                    preset=body.preset,
                )
            except ValueError as exc:
                raise conflict(str(exc), "output", "-", project_id) from None
            row = OutputRow(
                id=str(uuid.uuid4()),
                project_id=project_id,
                author=principal.subject,
                title=body.title,
                kind=body.kind,
                preset=body.preset,
                submitted=body.model_dump(mode="json"),
                checked=checked.as_dict(),
                state="submitted",
            )
            s.add(row)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="output.submit",
                object_type="output",
                object_id=row.id,
                project_id=project_id,
                detail={"preset": body.preset, "outcome": checked.outcome, **checked.summary},
            )
            return _out(s, row)

    @router.get(
        "/projects/{project_id}/outputs",
        summary="The project's outputs (members), oldest first, a page at a time.",
        responses=problems(403, 404, 409, 422),
    )
    def list_outputs(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> OutputPage:
        with unit(ctx, principal, "output.list") as s:
            authorised_data(s, principal, project_id, "approved members only")
            items, after = keyset_page(
                s.scalars,
                select(OutputRow).where(OutputRow.project_id == project_id),
                (OutputRow.created_at, OutputRow.id),
                limit=limit,
                cursor=cursor,
                item=lambda row: _out(s, row),
            )
            return OutputPage(items=items, next_cursor=after)

    @router.get(
        "/projects/{project_id}/outputs/{output_id}",
        summary="One output with its checks (members; independent output checkers).",
        responses=problems(404, 409),
    )
    def get_output(
        project_id: str, output_id: str, principal: Principal = Depends(auth)
    ) -> OutputOut:
        with unit(ctx, principal, "output.read") as s:
            _, facts, _ = load_project(s, project_id)
            why = output_read_refusal(caller_facts(s, principal), facts)
            if why is not None:
                raise refused_for(why, "members and checkers only", "output", output_id, project_id)
            return _out(s, load_output(s, project_id, output_id))

    @router.post(
        "/projects/{project_id}/outputs/{output_id}/reviews",
        status_code=status.HTTP_201_CREATED,
        summary="An output checker's decision; two approvals by distinct checkers release it.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def review_output(
        project_id: str, output_id: str, body: ReviewIn, principal: Principal = Depends(auth)
    ) -> OutputOut:
        with unit(ctx, principal, "output.review") as s:
            _, facts, _ = load_project(s, project_id)
            caller = caller_facts(s, principal)
            if output_read_refusal(caller, facts) is Refusal.HIDDEN:
                raise not_found("output", output_id, project_id)
            row = load_output(s, project_id, output_id)
            why = output_review_refusal(caller, facts, row.author)
            if why is not None:
                raise refused_for(
                    why,
                    "only an independent output checker reviews; authors cannot release their own",
                    "output",
                    output_id,
                    project_id,
                )
            if row.state != "submitted":
                raise conflict(
                    f"the output is already {row.state}", "output", output_id, project_id
                )
            if s.get(OutputReviewRow, (output_id, principal.subject)) is not None:
                raise conflict("each checker reviews once", "output", output_id, project_id)
            s.add(
                OutputReviewRow(
                    output_id=output_id,
                    checker=principal.subject,
                    decision=body.decision,
                    comment=body.comment,
                )
            )
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="output.review",
                object_type="output",
                object_id=output_id,
                project_id=project_id,
                detail={"decision": body.decision},
            )
            approvals = s.execute(
                select(OutputReviewRow.checker).where(
                    OutputReviewRow.output_id == output_id, OutputReviewRow.decision == "approve"
                )
            ).scalars()
            distinct = {c for c in approvals if c != row.author}
            if body.decision == "reject":
                row.state = "rejected"
            elif len(distinct) >= REQUIRED_APPROVALS:
                row.state = "released"
                row.released_at = datetime.now(UTC)
                ctx.audit.append(
                    s,
                    actor=principal.subject,
                    action="output.release",
                    object_type="output",
                    object_id=output_id,
                    project_id=project_id,
                    detail={"checkers": sorted(distinct)},
                )
            return _out(s, row)

    @router.get(
        "/projects/{project_id}/outputs/{output_id}/release",
        summary="The released (protected) table (approved members; audited).",
        responses=problems(403, 404, 409),
    )
    def released_table(
        project_id: str, output_id: str, principal: Principal = Depends(auth)
    ) -> dict[str, Any]:
        with unit(ctx, principal, "output.download") as s:
            authorised_data(s, principal, project_id, "approved members only")
            row = load_output(s, project_id, output_id)
            if row.state != "released":
                raise conflict("the output has not been released", "output", output_id, project_id)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="output.download",
                object_type="output",
                object_id=output_id,
                project_id=project_id,
            )
            checked = row.checked
            return {
                "title": row.title,
                "preset": row.preset,
                "cells": [
                    {"row": c["row"], "col": c["col"], "value": c["value"]}
                    for c in checked["cells"]
                ],
                "totals": [
                    {"row": c["row"], "col": c["col"], "value": c["value"]}
                    for c in checked["totals"]
                ],
            }

    @router.get(
        "/outputs",
        summary="Outputs awaiting review (output checkers; excludes their own projects), "
        "oldest first, a page at a time.",
        responses=problems(403, 422),
    )
    def review_queue(
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> OutputPage:
        with unit(ctx, principal, "output.queue") as s:
            if not principal.has_role(Role.OUTPUT_CHECKER.value):
                raise forbidden("output checkers only", "output", "-")
            items, after = keyset_page(
                s.scalars,
                select(OutputRow).where(OutputRow.state == "submitted"),
                (OutputRow.created_at, OutputRow.id),
                limit=limit,
                cursor=cursor,
                item=reviewable(s, principal, lambda row: _out(s, row)),
            )
            return OutputPage(items=items, next_cursor=after)

    return router
