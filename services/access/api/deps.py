"""What every route shares: the caller, one unit of work, audited refusals, object loading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from services.access.bootstrap import AccessContext
from services.access.domain.governance import controllers_required
from services.access.domain.policy import (
    CallerFacts,
    ProjectFacts,
    Refusal,
    can_read_project,
    data_use_refusal,
    output_review_refusal,
)
from services.access.domain.projects import (
    Accreditation,
    ProjectState,
    Role,
    effective_state,
    has_current_accreditation,
)
from services.access.storage.models import (
    ProjectApprovalRow,
    ProjectMemberRow,
    ProjectRow,
    ResearcherRow,
)
from services.runtime.auth import Principal, bearer_principal
from services.runtime.db import transaction
from services.runtime.problems import STATUS_SLUGS, problem_type

__all__ = [
    "PROBLEM_KINDS",
    "REQUEST_SOURCE",
    "Refused",
    "RequestSource",
    "auth_dependency",
    "authorised_data",
    "caller_facts",
    "forbidden",
    "load_project",
    "not_found",
    "problems",
    "refused_for",
    "reviewable",
    "today",
    "unit",
]


PROBLEM_KINDS: dict[str, tuple[int, str]] = {
    "not-found": (404, "no such object, or one the caller may not see (the same answer)"),
    "forbidden": (403, "the caller's role or relation to the object does not allow this"),
    "state-conflict": (409, "the object's state does not allow this (now)"),
    "project-not-active": (409, "the project is not active: its data and outputs do not move"),
    "no-extract": (409, "the workspace has no extract yet"),
    "approval-not-valid": (422, "the approval does not fit the request or the rules"),
    "unknown-researcher": (422, "the member to add is not a registered researcher"),
    "job-not-valid": (422, "the job's script or requirements are not allowed"),
    "output-not-valid": (422, "the output names no source in the workspace, or a bad spec"),
    "output-check-failed": (422, "the output's disclosure check could not run"),
    "query-refused": (422, "the query is not one a workspace runs (syntax, limits)"),
    "invalid-request": (422, "the request is not valid"),
    "invalid-cursor": (422, "the cursor is not one this API made"),
    "too-many-extracts": (429, "too many extract requests; retry after Retry-After seconds"),
}
"""Every kind of refusal access answers: slug -> (status, meaning); the problem's ``type`` is
``problem_type(slug)``, and the OpenAPI document lists the kinds each status may carry."""

_PROBLEMS: dict[int, dict[str, Any]] = {
    400: {"description": "The body cannot be read (not UTF-8)."},
    403: {"description": "The caller's role or relation to the object does not allow this."},
    404: {"description": "No such object, or one the caller may not see (the same answer)."},
    409: {"description": "The object's state does not allow this (now)."},
    422: {"description": "The request, or what it asks for, is not valid."},
    429: {
        "description": "Too many requests; retry after Retry-After seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route answers (problem documents: the shared
    app factory adds their media type and schema, and 401 for every route), each naming the
    problem types its status may carry."""
    return {status: _documented(status) for status in statuses}


def _documented(status: int) -> dict[str, Any]:
    kinds = [problem_type(k) for k, (code, _) in PROBLEM_KINDS.items() if code == status]
    response = dict(_PROBLEMS[status])
    if kinds:
        response["description"] += " Problem type: " + ", ".join(f"`{k}`" for k in kinds) + "."
    return response


def today() -> date:
    return datetime.now(UTC).date()


class Refused(Exception):
    """A request refused on purpose; audited (outside the rolled-back unit) and answered."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        detail: str | None = None,
        outcome: str = "denied",
        object_type: str | None = None,
        object_id: str | None = None,
        project_id: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(title)
        # The problem's type: a kind access names (PROBLEM_KINDS), else its status's.
        self.kind = kind or STATUS_SLUGS.get(status, "invalid-request")
        self.status = status
        self.title = title
        self.detail = detail
        self.outcome = outcome
        self.object_type = object_type
        self.object_id = object_id
        self.project_id = project_id
        self.headers = headers
        self.extra = extra


def not_found(object_type: str, object_id: str, project_id: str | None = None) -> Refused:
    """Also what a caller gets for an object they may not see: existence is not revealed."""
    return Refused(
        404,
        "Not found",
        kind="not-found",
        object_type=object_type,
        object_id=object_id,
        project_id=project_id,
    )


def forbidden(
    detail: str, object_type: str, object_id: str, project_id: str | None = None
) -> Refused:
    return Refused(
        403,
        "Forbidden",
        kind="forbidden",
        detail=detail,
        object_type=object_type,
        object_id=object_id,
        project_id=project_id,
    )


def conflict(
    detail: str,
    object_type: str,
    object_id: str,
    project_id: str | None = None,
    *,
    kind: str = "state-conflict",
) -> Refused:
    return Refused(
        409,
        "Conflict",
        kind=kind,
        detail=detail,
        outcome="refused",
        object_type=object_type,
        object_id=object_id,
        project_id=project_id,
    )


def refused_for(
    refusal: Refusal, detail: str, object_type: str, object_id: str, project_id: str | None
) -> Refused:
    """The answer to a policy refusal: 404 hidden, 403 forbidden, 409 the state forbids it."""
    if refusal is Refusal.HIDDEN:
        return not_found(object_type, object_id, project_id)
    if refusal is Refusal.FORBIDDEN:
        return forbidden(detail, object_type, object_id, project_id)
    return conflict(
        "the project is not active: its extracts and outputs do not move",
        object_type,
        object_id,
        project_id,
        kind="project-not-active",
    )


@contextmanager
def unit(ctx: AccessContext, principal: Principal, action: str) -> Iterator[Session]:
    """One transaction for the request; a ``Refused`` rolls it back, is audited, answered."""
    refusal: Refused | None = None
    try:
        with transaction(ctx.sessions) as session:
            yield session
    except Refused as exc:
        refusal = exc
    if refusal is None:
        return
    # Counted per caller and window: a few in full, then one summary (storage/refusals.py).
    ctx.refusals.record(
        f"subject:{principal.subject}",
        actor=principal.subject,
        action=action,
        outcome=refusal.outcome,
        reason=str(refusal.status),
        object_type=refusal.object_type,
        object_id=refusal.object_id,
        project_id=refusal.project_id,
        detail={"status": refusal.status},
    )
    body: dict[str, Any] = {"type": problem_type(refusal.kind)}
    if refusal.detail:
        body["detail"] = refusal.detail
    if refusal.extra:
        body.update(refusal.extra)
    raise HTTPException(
        refusal.status, detail={"title": refusal.title, **body}, headers=refusal.headers
    )


def auth_dependency(ctx: AccessContext) -> Callable[..., Principal]:
    """Bearer authentication whose every decision lands in the audit trail."""

    def on_decision(principal: Principal | None, reason: str) -> None:
        if principal is None:  # anyone on the network: counted per address and window
            ctx.refusals.record(
                f"address:{REQUEST_SOURCE.get()}",
                actor=None,
                action="auth.authenticate",
                outcome="denied",
                reason=reason,
                detail={"reason": reason},
            )
            return
        with transaction(ctx.sessions) as session:
            ctx.audit.append(
                session,
                actor=principal.subject,
                action="auth.authenticate",
                detail={"reason": reason},
            )

    return bearer_principal(ctx.verifier, on_decision)


REQUEST_SOURCE: ContextVar[str] = ContextVar("fjo_access_request_source", default="unknown")
"""The client address of the request being served (``RequestSource`` sets it)."""


class RequestSource:
    """ASGI middleware: the client's address, for counting refusals per source. Behind a
    proxy, run uvicorn with ``--proxy-headers`` and its trusted ``--forwarded-allow-ips`` so
    that this is the caller's address, not the proxy's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = REQUEST_SOURCE.set(str(client[0]) if client else "unknown")
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_SOURCE.reset(token)


def caller_facts(session: Session, principal: Principal) -> CallerFacts:
    row = session.get(ResearcherRow, principal.subject)
    accreditation = (
        Accreditation(principal.subject, row.accredited_until, row.revoked) if row else None
    )
    return CallerFacts(
        subject=principal.subject,
        roles=principal.roles,
        accredited=has_current_accreditation(accreditation, today()),
        controller=principal.source if principal.has_role(Role.DATA_CONTROLLER.value) else None,
    )


def authorised_project(
    session: Session,
    principal: Principal,
    project_id: str,
    allowed: Callable[[CallerFacts, ProjectFacts], bool],
    refusal: str,
    *,
    lock: bool = False,
) -> tuple[ProjectRow, ProjectFacts]:
    """The project and its facts, if the caller may do this to it: 404 when they may not even see it
    (existence is not revealed), 403 with ``refusal`` when they may see it but not do this."""
    project, facts, _ = load_project(session, project_id, lock=lock)
    caller = caller_facts(session, principal)
    if not can_read_project(caller, facts):
        raise not_found("project", project_id, project_id)
    if not allowed(caller, facts):
        raise forbidden(refusal, "project", project_id, project_id)
    return project, facts


def authorised_data(
    session: Session, principal: Principal, project_id: str, refusal: str, *, lock: bool = False
) -> tuple[ProjectRow, ProjectFacts]:
    """The project, if the caller may use its data now (``policy.data_use_refusal``)."""
    project, facts, _ = load_project(session, project_id, lock=lock)
    why = data_use_refusal(caller_facts(session, principal), facts)
    if why is not None:
        raise refused_for(why, refusal, "project", project_id, project_id)
    return project, facts


Out = TypeVar("Out")


def reviewable(
    session: Session, principal: Principal, out: Callable[[Any], Out]
) -> Callable[[Any], Out | None]:
    """A checker's queue's item (``keyset_page``'s): ``out`` of a queued output the caller
    may review, None for one they may not (their own project's, or an author's own)."""
    caller = caller_facts(session, principal)

    def item(row: Any) -> Out | None:
        _, facts, _ = load_project(session, row.project_id)
        return out(row) if output_review_refusal(caller, facts, row.author) is None else None

    return item


def load_project(
    session: Session, project_id: str, *, lock: bool = False
) -> tuple[ProjectRow, ProjectFacts, ProjectApprovalRow | None]:
    """The project, the facts the policy needs, and its approval; expires it when due."""
    query = select(ProjectRow).where(ProjectRow.id == project_id)
    if lock:
        query = query.with_for_update()
    project = session.execute(query).scalar_one_or_none()
    if project is None:
        raise not_found("project", project_id, project_id)
    members = frozenset(
        session.execute(
            select(ProjectMemberRow.subject).where(ProjectMemberRow.project_id == project_id)
        ).scalars()
    )
    approval = session.get(ProjectApprovalRow, project_id)
    state = ProjectState(project.state)
    current = effective_state(state, project.access_until, today())
    if current is not state:
        project.state = current.value
        project.closed_at = datetime.now(UTC)
    facts = ProjectFacts(
        owner=project.owner,
        members=members,
        approved_members=frozenset(approval.members) if approval else frozenset(),
        state=current,
        controllers=frozenset(controllers_required(project.requested.get("datasets", []))),
    )
    return project, facts, approval
