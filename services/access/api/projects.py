"""Safe projects: create, edit and submit drafts; approve; activate; close; members."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, status
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    Refused,
    authorised_project,
    caller_facts,
    conflict,
    forbidden,
    load_project,
    not_found,
    problems,
    today,
    unit,
)
from services.access.api.schemas import (
    ApprovalIn,
    DecisionIn,
    MemberIn,
    ProjectIn,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    SignOffIn,
)
from services.access.bootstrap import AccessContext
from services.access.domain.catalogue import (
    CATALOGUE,
    QUASI_IDENTIFIERS,
    catalogue_variables,
    pinned_quasi_identifiers,
)
from services.access.domain.generalisation import DatePrecision
from services.access.domain.governance import (
    CONTROLLERS,
    controllers_required,
    missing_sign_offs,
    sign_off_problem,
)
from services.access.domain.policy import (
    can_manage_draft,
    can_read_project,
    can_review_project,
    can_sign_for,
    can_steer_project,
)
from services.access.domain.projects import (
    Action,
    Approval,
    DomainError,
    ProjectState,
    ProjectView,
    approval_errors,
    next_state,
)
from services.access.storage.models import (
    ProjectApprovalRow,
    ProjectDecisionRow,
    ProjectMemberRow,
    ProjectRow,
    ProjectSignOffRow,
    ResearcherRow,
)
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.pagination import PageCursor, PageLimit, keyset_page

__all__ = ["projects_router"]


def _project_out(session: Session, project: ProjectRow) -> ProjectOut:
    members = sorted(
        session.execute(
            select(ProjectMemberRow.subject).where(ProjectMemberRow.project_id == project.id)
        ).scalars()
    )
    approval = session.get(ProjectApprovalRow, project.id)
    approval_out: dict[str, Any] | None = None
    if approval is not None:
        approval_out = {
            "approver": approval.approver,
            "datasets": approval.datasets,
            "variables": approval.variables,
            "window_start": approval.window_start.isoformat(),
            "window_end": approval.window_end.isoformat(),
            "members": approval.members,
            "access_until": approval.access_until.isoformat(),
            "quasi_identifiers": _approved_quasi_identifiers(approval, project),
            "date_precision": approval.date_precision or DatePrecision.MONTH.value,
            "conditions": approval.conditions,
            "egress": list(approval.egress or []),
            "retention_days": approval.retention_days,
            "publish_in_register": bool(approval.register_publish),
            "register_withheld_reason": approval.register_withheld_reason,
            "decided_at": approval.decided_at.isoformat(),
        }
    sign_offs = session.execute(
        select(ProjectSignOffRow)
        .where(ProjectSignOffRow.project_id == project.id)
        .order_by(ProjectSignOffRow.signed_at)
    ).scalars()
    decisions = session.execute(
        select(ProjectDecisionRow)
        .where(ProjectDecisionRow.project_id == project.id)
        .order_by(ProjectDecisionRow.id)
    ).scalars()
    return ProjectOut(
        id=project.id,
        title=project.title,
        summary=project.summary,
        owner=project.owner,
        state=project.state,
        members=members,
        requested=project.requested,
        approval=approval_out,
        k=project.k,
        quasi_identifiers=list(pinned_quasi_identifiers(project.quasi_identifiers)),
        access_until=project.access_until,
        created_at=project.created_at,
        controllers_required=list(controllers_required(project.requested.get("datasets", []))),
        sign_offs=[
            {
                "controller": r.controller,
                "name": CONTROLLERS.get(r.controller, r.controller),
                "by": r.signed_by,
                "comment": r.comment,
                "at": r.signed_at.isoformat(),
            }
            for r in sign_offs
        ],
        decisions=[
            {
                "kind": r.kind,
                "by": r.decided_by,
                "comment": r.comment,
                "at": r.decided_at.isoformat(),
            }
            for r in decisions
        ],
    )


def _approved_quasi_identifiers(approval: ProjectApprovalRow, project: ProjectRow) -> list[str]:
    """What the approval pinned; an approval recorded before approvals pinned them gets the
    project's own set (never less than the catalogue's)."""
    pinned = approval.quasi_identifiers or project.quasi_identifiers
    return list(pinned_quasi_identifiers(pinned))


def _requested(body: ProjectIn | ProjectPatch, base: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name in ("datasets", "variables"):
        value = getattr(body, name)
        if value is not None:
            out[name] = list(value)
    for name in ("window_start", "window_end"):
        value = getattr(body, name)
        if value is not None:
            out[name] = value.isoformat()
    for name in ("legal_basis", "dsa_reference"):
        value = getattr(body, name)
        if value is not None:
            out[name] = value
    return out


def _signed(session: Session, project_id: str) -> list[str]:
    return list(
        session.execute(
            select(ProjectSignOffRow.controller).where(ProjectSignOffRow.project_id == project_id)
        ).scalars()
    )


def projects_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["projects"], route_class=AuthenticatedRoute)

    def transition(
        session: Session, project: ProjectRow, action: Action, who: Principal
    ) -> ProjectState:
        try:
            new = next_state(ProjectState(project.state), action)
        except DomainError as exc:
            raise conflict(str(exc), "project", project.id, project.id) from None
        project.state = new.value
        ctx.audit.append(
            session,
            actor=who.subject,
            action=f"project.{action.value}",
            object_type="project",
            object_id=project.id,
            project_id=project.id,
            detail={"state": new.value},
        )
        return new

    @router.get("/catalogue", summary="Datasets and variables a project can ask for.")
    def catalogue(principal: Principal = Depends(auth)) -> dict[str, Any]:
        return {
            "datasets": [
                {
                    "name": d.name,
                    "description": d.description,
                    "variables": [
                        {
                            "name": v.name,
                            "type": v.type,
                            "description": v.description,
                            "project_pseudonym": v.pseudonym is not None,
                            "quasi_identifier": v.quasi_identifier,
                        }
                        for v in d.variables
                    ],
                }
                for d in CATALOGUE.values()
            ],
            "quasi_identifiers": list(QUASI_IDENTIFIERS),
        }

    @router.post(
        "/projects",
        status_code=status.HTTP_201_CREATED,
        summary="Create a draft project (accredited researchers).",
        responses=problems(400, 403, 422),
    )
    def create_project(body: ProjectIn, principal: Principal = Depends(auth)) -> ProjectOut:
        with unit(ctx, principal, "project.create") as s:
            caller = caller_facts(s, principal)
            if not caller.active_researcher:
                raise forbidden("an accredited researcher is required", "project", "-")
            k = max(body.k or ctx.settings.disclosure.k, ctx.settings.disclosure.k)
            project = ProjectRow(
                id=str(uuid.uuid4()),
                title=body.title,
                summary=body.summary,
                owner=principal.subject,
                state=ProjectState.DRAFT.value,
                requested=_requested(body, {}),
                k=k,
                quasi_identifiers=list(pinned_quasi_identifiers(body.quasi_identifiers or ())),
                k_mode=ctx.settings.disclosure.mode,
            )
            s.add(project)
            s.flush()  # no ORM relationships: the project row must exist before its members
            s.add(
                ProjectMemberRow(
                    project_id=project.id, subject=principal.subject, added_by=principal.subject
                )
            )
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.create",
                object_type="project",
                object_id=project.id,
                project_id=project.id,
            )
            return _project_out(s, project)

    @router.get(
        "/projects",
        summary="Projects the caller may see, oldest first, a page at a time.",
        responses=problems(422),
    )
    def list_projects(
        limit: PageLimit = 50, cursor: PageCursor = None, principal: Principal = Depends(auth)
    ) -> ProjectPage:
        with unit(ctx, principal, "project.list") as s:
            caller = caller_facts(s, principal)
            query = select(ProjectRow)
            if not (caller.roles & {"admin", "approver", "data-controller"}):
                mine = select(ProjectMemberRow.project_id).where(
                    ProjectMemberRow.subject == principal.subject
                )
                query = query.where(
                    or_(ProjectRow.id.in_(mine), ProjectRow.owner == caller.subject)
                )

            def visible(project: ProjectRow) -> ProjectOut | None:
                _, facts, _ = load_project(s, project.id)
                return _project_out(s, project) if can_read_project(caller, facts) else None

            items, after = keyset_page(
                s.scalars,
                query,
                (ProjectRow.created_at, ProjectRow.id),
                limit=limit,
                cursor=cursor,
                item=visible,
            )
            return ProjectPage(items=items, next_cursor=after)

    @router.get("/projects/{project_id}", summary="One project.", responses=problems(404))
    def get_project(project_id: str, principal: Principal = Depends(auth)) -> ProjectOut:
        with unit(ctx, principal, "project.read") as s:
            project, facts, _ = load_project(s, project_id)
            if not can_read_project(caller_facts(s, principal), facts):
                raise not_found("project", project_id, project_id)
            return _project_out(s, project)

    @router.patch(
        "/projects/{project_id}",
        summary="Edit a draft (its owner).",
        responses=problems(400, 403, 404, 409, 422),
    )
    def edit_project(
        project_id: str, body: ProjectPatch, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        with unit(ctx, principal, "project.edit") as s:
            project, facts = authorised_project(
                s,
                principal,
                project_id,
                can_manage_draft,
                "only the owner edits a draft",
                lock=True,
            )
            if facts.state is not ProjectState.DRAFT:
                raise conflict("only a draft can be edited", "project", project_id, project_id)
            if body.title is not None:
                project.title = body.title
            if body.summary is not None:
                project.summary = body.summary
            if body.quasi_identifiers is not None:
                project.quasi_identifiers = list(pinned_quasi_identifiers(body.quasi_identifiers))
            project.requested = _requested(body, project.requested)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.edit",
                object_type="project",
                object_id=project_id,
                project_id=project_id,
            )
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/members",
        status_code=status.HTTP_201_CREATED,
        summary="Propose a member for a draft (its owner).",
        responses=problems(400, 403, 404, 409, 422),
    )
    def add_member(
        project_id: str, body: MemberIn, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        with unit(ctx, principal, "project.member.add") as s:
            project, facts = authorised_project(
                s, principal, project_id, can_manage_draft, "only the owner adds members", lock=True
            )
            if facts.state is not ProjectState.DRAFT:
                raise conflict("members change only in a draft", "project", project_id, project_id)
            if s.get(ResearcherRow, body.subject) is None:
                raise Refused(
                    422,
                    "Unknown researcher",
                    kind="unknown-researcher",
                    outcome="refused",
                    object_type="project",
                    object_id=project_id,
                    project_id=project_id,
                )
            if body.subject not in facts.members:
                s.add(
                    ProjectMemberRow(
                        project_id=project_id, subject=body.subject, added_by=principal.subject
                    )
                )
                s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.member.add",
                object_type="member",
                object_id=body.subject,
                project_id=project_id,
            )
            return _project_out(s, project)

    @router.delete(
        "/projects/{project_id}/members/{subject}",
        summary="Withdraw a proposed member from a draft (its owner).",
        responses=problems(403, 404, 409),
    )
    def remove_member(
        project_id: str, subject: str, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        with unit(ctx, principal, "project.member.remove") as s:
            project, facts = authorised_project(
                s,
                principal,
                project_id,
                can_manage_draft,
                "only the owner removes members",
                lock=True,
            )
            if facts.state is not ProjectState.DRAFT:
                raise conflict("members change only in a draft", "project", project_id, project_id)
            if subject == project.owner:
                raise conflict("the owner stays a member", "project", project_id, project_id)
            member = s.get(ProjectMemberRow, (project_id, subject))
            if member is None:
                raise not_found("member", subject, project_id)
            s.delete(member)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.member.remove",
                object_type="member",
                object_id=subject,
                project_id=project_id,
            )
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/submit",
        summary="Submit a draft for approval.",
        responses=problems(403, 404, 409),
    )
    def submit(project_id: str, principal: Principal = Depends(auth)) -> ProjectOut:
        with unit(ctx, principal, "project.submit") as s:
            project, _facts = authorised_project(
                s, principal, project_id, can_manage_draft, "only the owner submits", lock=True
            )
            transition(s, project, Action.SUBMIT, principal)
            project.submitted_at = datetime.now(UTC)
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/return",
        summary="Return a submitted project to its owner, with the panel's comments.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def return_project(
        project_id: str, body: DecisionIn | None = None, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        return decide(project_id, Action.RETURN, body, principal)

    @router.post(
        "/projects/{project_id}/reject",
        summary="Reject a submitted project (final), with the panel's reasons.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def reject_project(
        project_id: str, body: DecisionIn | None = None, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        return decide(project_id, Action.REJECT, body, principal)

    def decide(
        project_id: str, action: Action, body: DecisionIn | None, principal: Principal
    ) -> ProjectOut:
        with unit(ctx, principal, f"project.{action.value}") as s:
            project, _facts = authorised_project(
                s,
                principal,
                project_id,
                can_review_project,
                "an independent approver is required",
                lock=True,
            )
            transition(s, project, action, principal)
            kind = "returned" if action is Action.RETURN else "rejected"
            s.add(
                ProjectDecisionRow(
                    project_id=project_id,
                    kind=kind,
                    decided_by=principal.subject,
                    comment=body.comment if body else "",
                )
            )
            s.flush()
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/sign-offs",
        status_code=status.HTTP_201_CREATED,
        summary="A data controller signs a submitted project that uses its data (audited).",
        responses=problems(400, 403, 404, 409, 422),
    )
    def sign_off(
        project_id: str, body: SignOffIn | None = None, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        with unit(ctx, principal, "project.sign-off") as s:
            project, facts = authorised_project(
                s,
                principal,
                project_id,
                can_sign_for,
                "only a signatory of a data controller whose data the project uses",
                lock=True,
            )
            controller = caller_facts(s, principal).controller
            assert controller is not None  # can_sign_for holds
            problem = sign_off_problem(
                state=facts.state.value,
                controller=controller,
                required=facts.controllers,
                signed=_signed(s, project_id),
            )
            if problem is not None:
                raise conflict(problem, "project", project_id, project_id)
            s.add(
                ProjectSignOffRow(
                    project_id=project_id,
                    controller=controller,
                    signed_by=principal.subject,
                    comment=body.comment if body else "",
                )
            )
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.sign-off",
                object_type="project",
                object_id=project_id,
                project_id=project_id,
                detail={"controller": controller},
            )
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/approve",
        summary="Approve a submitted project: datasets, variables, window, members.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def approve(
        project_id: str, body: ApprovalIn, principal: Principal = Depends(auth)
    ) -> ProjectOut:
        with unit(ctx, principal, "project.approve") as s:
            project, facts = authorised_project(
                s,
                principal,
                project_id,
                can_review_project,
                "an approver cannot approve a project they own or belong to",
                lock=True,
            )
            approval = Approval(
                datasets=tuple(body.datasets),
                variables=tuple(body.variables),
                window_start=body.window_start,
                window_end=body.window_end,
                members=tuple(body.members),
                access_until=body.access_until,
                approver=principal.subject,
                quasi_identifiers=tuple(body.quasi_identifiers),
            )
            errors = approval_errors(
                ProjectView(
                    owner=project.owner,
                    members=facts.members,
                    state=facts.state,
                    quasi_identifiers=pinned_quasi_identifiers(project.quasi_identifiers),
                ),
                approval,
                catalogue=catalogue_variables(),
                today=today(),
            )
            waiting = missing_sign_offs(
                controllers_required(body.datasets) + tuple(facts.controllers),
                _signed(s, project_id),
            )
            if not errors and waiting:
                raise conflict(
                    "the data controllers have not all signed: waiting for "
                    + ", ".join(CONTROLLERS.get(c, c) for c in dict.fromkeys(waiting)),
                    "project",
                    project_id,
                    project_id,
                )
            if errors:
                raise Refused(
                    409 if facts.state is not ProjectState.SUBMITTED else 422,
                    "Approval not valid",
                    kind="approval-not-valid",
                    detail="; ".join(errors),
                    outcome="refused",
                    object_type="project",
                    object_id=project_id,
                    project_id=project_id,
                )
            transition(s, project, Action.APPROVE, principal)
            s.add(
                ProjectApprovalRow(
                    project_id=project_id,
                    approver=principal.subject,
                    datasets=list(body.datasets),
                    variables=list(body.variables),
                    window_start=body.window_start,
                    window_end=body.window_end,
                    members=sorted(set(body.members)),
                    access_until=body.access_until,
                    quasi_identifiers=list(dict.fromkeys(body.quasi_identifiers)),
                    date_precision=body.date_precision,
                    conditions=body.conditions,
                    egress=sorted(set(body.egress)),
                    retention_days=body.retention_days,
                    register_publish=body.publish_in_register,
                    register_withheld_reason=body.register_withheld_reason,
                )
            )
            project.approved_at = datetime.now(UTC)
            project.access_until = body.access_until
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="project.approval.recorded",
                object_type="project",
                object_id=project_id,
                project_id=project_id,
                detail={
                    "datasets": sorted(body.datasets),
                    "variables": sorted(body.variables),
                    "window": [body.window_start.isoformat(), body.window_end.isoformat()],
                    "members": sorted(set(body.members)),
                    "access_until": body.access_until.isoformat(),
                    "quasi_identifiers": list(dict.fromkeys(body.quasi_identifiers)),
                    "date_precision": body.date_precision,
                    "egress": sorted(set(body.egress)),
                    "retention_days": body.retention_days,
                    "publish_in_register": body.publish_in_register,
                    "register_withheld_reason": body.register_withheld_reason,
                },
            )
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/activate",
        summary="Open an approved project for work.",
        responses=problems(403, 404, 409),
    )
    def activate(project_id: str, principal: Principal = Depends(auth)) -> ProjectOut:
        with unit(ctx, principal, "project.activate") as s:
            project, _facts = authorised_project(
                s, principal, project_id, can_steer_project, "owner or admin only", lock=True
            )
            transition(s, project, Action.ACTIVATE, principal)
            project.activated_at = datetime.now(UTC)
            return _project_out(s, project)

    @router.post(
        "/projects/{project_id}/close",
        summary="Close a project (owner or admin).",
        responses=problems(403, 404, 409),
    )
    def close(project_id: str, principal: Principal = Depends(auth)) -> ProjectOut:
        with unit(ctx, principal, "project.close") as s:
            project, _facts = authorised_project(
                s, principal, project_id, can_steer_project, "owner or admin only", lock=True
            )
            transition(s, project, Action.CLOSE, principal)
            project.closed_at = datetime.now(UTC)
            return _project_out(s, project)

    return router
