"""The public transparency register: approved projects and their released outputs, for anyone.

Like OpenSAFELY's project list and the HDR UK Data Use Register, it answers without a token:
only what the panel approved for publication (the approval's ``publish_in_register``; a
project withheld, or approved before the register existed, is not listed), and of each
released output only its title, release date and how many checkers released it, never its
content. JSON a page at a time (``services.runtime.pagination``), CSV whole.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from services.access.api.deps import today
from services.access.bootstrap import AccessContext
from services.access.domain.airlock import OutputState
from services.access.domain.projects import ProjectState, effective_state
from services.access.storage.models import (
    AirlockOutputRow,
    AirlockReviewRow,
    ProjectApprovalRow,
    ProjectRow,
    ResearcherRow,
)
from services.runtime.pagination import Page, PageCursor, PageLimit, keyset_page

__all__ = ["RegisterOutput", "RegisterProject", "RegisterProjectPage", "register_router"]

_LISTED_STATES = (
    ProjectState.APPROVED.value,
    ProjectState.ACTIVE.value,
    ProjectState.CLOSED.value,
    ProjectState.EXPIRED.value,
)
CSV_COLUMNS = (
    "id",
    "title",
    "purpose",
    "organisation",
    "datasets",
    "legal_basis",
    "status",
    "approved_on",
    "access_until",
    "closed_on",
    "released_outputs",
    "released_output_titles",
)


class RegisterOutput(BaseModel):
    title: str
    released_on: date | None
    checkers: int = Field(description="How many output checkers released it.")


class RegisterProject(BaseModel):
    id: str
    title: str
    purpose: str = Field(description="The project's summary, as approved.")
    organisation: str | None = Field(description="The owner's organisation.")
    datasets: list[str] = Field(description="The datasets the panel approved.")
    legal_basis: str | None
    status: str = Field(description="approved, active, closed or expired.")
    approved_on: date | None
    access_until: date | None
    closed_on: date | None
    released_outputs: list[RegisterOutput]


class RegisterProjectPage(Page[RegisterProject]):
    """One page of the register, oldest approval first."""


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()


def _released_outputs(s: Session, project_ids: Sequence[str]) -> dict[str, list[RegisterOutput]]:
    """Released airlock outputs (the one review workflow), oldest first."""
    found: dict[str, list[tuple[datetime | None, RegisterOutput]]] = defaultdict(list)
    airlock_approvals = (
        select(
            AirlockReviewRow.output_id,
            AirlockReviewRow.revision,
            func.count(func.distinct(AirlockReviewRow.checker)).label("n"),
        )
        .where(AirlockReviewRow.decision == "approve")
        .group_by(AirlockReviewRow.output_id, AirlockReviewRow.revision)
        .subquery()
    )
    airlock = s.execute(
        select(
            AirlockOutputRow.project_id,
            AirlockOutputRow.title,
            AirlockOutputRow.released_at,
            airlock_approvals.c.n,
        )
        .outerjoin(
            airlock_approvals,
            and_(
                airlock_approvals.c.output_id == AirlockOutputRow.id,
                airlock_approvals.c.revision == AirlockOutputRow.revision,
            ),
        )
        .where(
            AirlockOutputRow.project_id.in_(project_ids),
            AirlockOutputRow.state == OutputState.RELEASED.value,
        )
    ).all()
    for project_id, title, released_at, n in airlock:
        found[project_id].append(
            (
                released_at,
                RegisterOutput(title=title, released_on=_day(released_at), checkers=n or 0),
            )
        )
    return {
        pid: [o for _, o in sorted(items, key=lambda i: (i[0] is None, i[0] or datetime.min))]
        for pid, items in found.items()
    }


def _published() -> Select[*tuple[Any, ...]]:
    """Published projects with their approval and owner's organisation; ``decided_at`` and
    ``id`` are selected on their own too, as the register's keyset."""
    return (
        select(
            ProjectRow,
            ProjectApprovalRow,
            ResearcherRow.organisation,
            ProjectApprovalRow.decided_at,
            ProjectRow.id,
        )
        .join(ProjectApprovalRow, ProjectApprovalRow.project_id == ProjectRow.id)
        .outerjoin(ResearcherRow, ResearcherRow.subject == ProjectRow.owner)
        .where(
            ProjectRow.state.in_(_LISTED_STATES),
            ProjectApprovalRow.register_publish.is_(True),
        )
    )


REGISTER_ORDER = (ProjectApprovalRow.decided_at, ProjectRow.id)
"""The register's order: by approval time, then project id."""


def register_entries(s: Session, rows: Sequence[Any], today: date) -> list[RegisterProject]:
    """The register's entries for rows of ``_published()``, with their released outputs
    (fetched for all the rows at once)."""
    outputs = _released_outputs(s, [row.id for row in rows])
    entries = []
    for project, approval, organisation, *_key in rows:
        state = effective_state(ProjectState(project.state), project.access_until, today)
        legal_basis = (project.requested or {}).get("legal_basis")
        entries.append(
            RegisterProject(
                id=project.id,
                title=project.title,
                purpose=project.summary,
                organisation=organisation,
                datasets=sorted(approval.datasets),
                legal_basis=legal_basis if isinstance(legal_basis, str) else None,
                status=state.value,
                approved_on=_day(approval.decided_at),
                access_until=project.access_until,
                closed_on=_day(project.closed_at),
                released_outputs=outputs.get(project.id, []),
            )
        )
    return entries


def register_csv(projects: Iterable[RegisterProject]) -> str:
    """The register as CSV, one row per project (outputs' titles joined by "; ")."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in projects:
        row: dict[str, Any] = p.model_dump(mode="json")
        row["datasets"] = " ".join(p.datasets)
        row["released_output_titles"] = "; ".join(o.title for o in p.released_outputs)
        row["released_outputs"] = len(p.released_outputs)
        writer.writerow(["" if row[c] is None else _safe_cell(str(row[c])) for c in CSV_COLUMNS])
    return out.getvalue()


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(row: Any) -> Any:
    """Every published project is public: the page keeps each row as it is."""
    return row


def register_router(ctx: AccessContext) -> APIRouter:
    router = APIRouter(prefix="/v1/register", tags=["register"])

    @router.get(
        "/projects",
        summary="The public register: approved projects and their released outputs (no token).",
        response_model=RegisterProjectPage,
        responses={422: {"description": "The cursor is not one this API made."}},
        openapi_extra={"security": []},
    )
    def projects(limit: PageLimit = 50, cursor: PageCursor = None) -> Response:
        with ctx.sessions() as s:
            rows, next_cursor = keyset_page(
                s.execute, _published(), REGISTER_ORDER, limit=limit, cursor=cursor, item=_row
            )
            page = RegisterProjectPage(
                items=register_entries(s, rows, today()), next_cursor=next_cursor
            )
        return JSONResponse(page.model_dump(mode="json"))

    @router.get(
        "/projects.csv",
        summary="The whole public register as CSV, one row per project (no token).",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "The register."}},
        openapi_extra={"security": []},
    )
    def projects_csv() -> Response:
        with ctx.sessions() as s:
            rows = s.execute(_published().order_by(*REGISTER_ORDER)).all()
            entries = register_entries(s, rows, today())
        return Response(
            register_csv(entries),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="fjo-register.csv"'},
        )

    return router
