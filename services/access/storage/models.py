"""SQLAlchemy 2 models of the access schema (every table prefixed ``access_``).

The audit log stores its timestamp and detail as canonical text, not as DateTime/JSON: the
chain's HMAC covers their exact bytes, and those must read back identically on SQLite and
PostgreSQL. Checkpoints have their own metadata so that they can live in another database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.delivery import processed_messages_table

__all__ = [
    "AirlockOutputRow",
    "AirlockReviewRow",
    "AuditCheckpointRow",
    "AuditHeadRow",
    "AuditLogRow",
    "Base",
    "CheckpointBase",
    "ExclusionRow",
    "ExtractHoldingRow",
    "ExtractRow",
    "JobRow",
    "LinkDecisionRow",
    "LinkResultRow",
    "ObjectionRow",
    "ProjectApprovalRow",
    "ProjectDecisionRow",
    "ProjectMemberRow",
    "ProjectRow",
    "ProjectSignOffRow",
    "RefusalWindowRow",
    "ResearchRecordRow",
    "ResearcherRow",
    "WorkspaceQueryRow",
    "processed_messages",
    "utcnow",
]

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored in the access schema")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class CheckpointBase(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class ResearcherRow(Base):
    __tablename__ = "access_researchers"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(200))
    accredited_until: Mapped[date | None] = mapped_column(Date)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectRow(Base):
    __tablename__ = "access_projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    requested: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    k: Mapped[int] = mapped_column(Integer, default=10)
    quasi_identifiers: Mapped[list[str]] = mapped_column(JsonType, default=list)
    k_mode: Mapped[str] = mapped_column(String(20), default="suppress")
    pseudonym_key_version: Mapped[int] = mapped_column(Integer, default=1)
    access_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    workspace_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the retention job deleted the ended project's workspace (migration 0012)."""


class ProjectMemberRow(Base):
    __tablename__ = "access_project_members"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("access_projects.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectApprovalRow(Base):
    __tablename__ = "access_project_approvals"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("access_projects.id", ondelete="CASCADE"), primary_key=True
    )
    approver: Mapped[str] = mapped_column(String(200))
    datasets: Mapped[list[str]] = mapped_column(JsonType)
    variables: Mapped[list[str]] = mapped_column(JsonType)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    members: Mapped[list[str]] = mapped_column(JsonType)
    access_until: Mapped[date] = mapped_column(Date)
    quasi_identifiers: Mapped[list[str] | None] = mapped_column(JsonType)
    """Pinned by the approver (None: recorded before approvals pinned them, migration 0002)."""
    date_precision: Mapped[str | None] = mapped_column(String(10))
    """week, month, quarter or year (None: recorded before migration 0003, read as month)."""
    conditions: Mapped[str] = mapped_column(Text, default="")
    egress: Mapped[list[str]] = mapped_column(JsonType, default=list)
    """Egress types the panel permits beyond the airlock (``row-level-download``); none by
    default (migration 0007)."""
    retention_days: Mapped[int | None] = mapped_column(Integer)
    """Days a closed project's workspace is kept, when the data-sharing agreement says
    otherwise than the setting (None: ``retention.workspace_days``; migration 0012)."""
    register_publish: Mapped[bool | None] = mapped_column(Boolean)
    """Whether the panel publishes the project in the public register (None: approved before
    the register existed, not published)."""
    register_withheld_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectSignOffRow(Base):
    """One data controller's sign-off of a project (governance.controllers_required)."""

    __tablename__ = "access_project_sign_offs"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("access_projects.id", ondelete="CASCADE"), primary_key=True
    )
    controller: Mapped[str] = mapped_column(String(60), primary_key=True)
    signed_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectDecisionRow(Base):
    """The panel's word on a project with its comments: returned or rejected."""

    __tablename__ = "access_project_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("access_projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    decided_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResearchRecordRow(Base):
    """Pseudonymised content as pseudonymise publishes it, keyed by record token."""

    __tablename__ = "access_research_records"
    __table_args__ = (Index("ix_access_research_records_type_date", "record_type", "event_date"),)

    record_token: Mapped[str] = mapped_column(String(128), primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(60))
    record_version: Mapped[int] = mapped_column(Integer, default=1)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    week_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[int | None] = mapped_column(Integer)
    lsoa: Mapped[str | None] = mapped_column(String(16))
    local_authority: Mapped[str | None] = mapped_column(String(16))
    case_token: Mapped[str | None] = mapped_column(String(128), index=True)
    related_tokens: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)
    event_date: Mapped[date | None] = mapped_column(Date)
    content: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    flags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkDecisionRow(Base):
    """The current linkage decision per record token: the highest sequence received."""

    __tablename__ = "access_link_decisions"

    record_token: Mapped[str] = mapped_column(String(128), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    alf: Mapped[str | None] = mapped_column(String(128))
    status_code: Mapped[int] = mapped_column(Integer)
    match_probability: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkResultRow(Base):
    """Every link result received (history: redelivery and late arrivals are harmless)."""

    __tablename__ = "access_link_results"

    record_token: Mapped[str] = mapped_column(String(128), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    supersedes_sequence: Mapped[int | None] = mapped_column(Integer)
    alf: Mapped[str | None] = mapped_column(String(128))
    status_code: Mapped[int] = mapped_column(Integer)
    match_probability: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExtractRow(Base):
    __tablename__ = "access_extracts"
    __table_args__ = (
        Index("ix_access_extracts_requester", "project_id", "requested_by", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("access_projects.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    manifest: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    directory: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(500))
    rebuild_reason: Mapped[str | None] = mapped_column(String(200))
    """Why the extract must be rebuilt: it holds records an objection took out (0014)."""
    rebuild_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExtractHoldingRow(Base):
    """A record an extract holds, with the ALF it was linked to then: what an objection
    looks up to flag the extracts that hold a person or a record."""

    __tablename__ = "access_extract_holdings"

    extract_id: Mapped[str] = mapped_column(
        ForeignKey("access_extracts.id", ondelete="CASCADE"), primary_key=True
    )
    record_token: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    alf: Mapped[str | None] = mapped_column(String(128), index=True)


class ObjectionRow(Base):
    """One objection, erasure request or opt-out as access applied (or refused) it."""

    __tablename__ = "access_objections"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(16))
    record_type: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(60))
    record_token: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    refusal_reason: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExclusionRow(Base):
    """A record token or an ALF an objection took out (``kind`` objection or erasure: out
    of the store and every extract) or opted out (``opt-out``: out of extracts of projects
    whose legal basis requires opt-outs to apply)."""

    __tablename__ = "access_exclusions"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # record | alf
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    receipt_id: Mapped[str | None] = mapped_column(String(36))
    excluded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkspaceQueryRow(Base):
    """One SQL query run in a project's workspace (its result stays there)."""

    __tablename__ = "access_workspace_queries"
    __table_args__ = (Index("ix_access_workspace_queries_project", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("access_projects.id"))
    author: Mapped[str] = mapped_column(String(200))
    sql: Mapped[str] = mapped_column(Text)
    sql_sha256: Mapped[str] = mapped_column(String(64))
    extract_id: Mapped[str | None] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(20))  # succeeded | refused
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(500))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[list[dict[str, str]]] = mapped_column(JsonType, default=list)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRow(Base):
    """An analysis job: a script run next to the workspace's data in the sandbox."""

    __tablename__ = "access_jobs"
    __table_args__ = (Index("ix_access_jobs_project", "project_id", "submitted_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("access_projects.id"))
    author: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    script_sha256: Mapped[str] = mapped_column(String(64))
    requirements: Mapped[list[str]] = mapped_column(JsonType, default=list)
    extract_id: Mapped[str | None] = mapped_column(String(36))
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    state: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(500))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    runner: Mapped[str] = mapped_column(String(40), default="bubblewrap")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner: Mapped[str | None] = mapped_column(String(100))
    """The replica that runs (or will run) the job, while it is queued or running."""
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The owner's lease, renewed by its heartbeat; once past, any replica fails the job."""


class AirlockOutputRow(Base):
    """An output asking to leave the workspace, with ACRO's checks computed from its data."""

    __tablename__ = "access_airlock_outputs"
    __table_args__ = (Index("ix_access_airlock_outputs_project", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("access_projects.id"))
    author: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[dict[str, Any]] = mapped_column(JsonType)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    preset: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(10))  # ACRO's: pass | fail | review
    checks: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    exception: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AirlockReviewRow(Base):
    """A checker's comment, return, approval or rejection of one revision of an output."""

    __tablename__ = "access_airlock_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    output_id: Mapped[str] = mapped_column(
        ForeignKey("access_airlock_outputs.id", ondelete="CASCADE"), index=True
    )
    revision: Mapped[int] = mapped_column(Integer)
    checker: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLogRow(Base):
    """Append-only: the application only inserts (triggers refuse UPDATE and DELETE, and the
    grants take them from the service's role); the chain makes any other change visible."""

    __tablename__ = "access_audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(200))
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128))
    """Ed25519 over the hash, hex (None only for rows written before migration 0004)."""


class AuditHeadRow(Base):
    """One row: the chain's head, locked while appending so that appends serialise. It only
    moves forward, one row at a time (a trigger refuses anything else)."""

    __tablename__ = "access_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class RefusalWindowRow(Base):
    """Refusals of one source in one window, counted until the window's summary entry is
    written (``storage/refusals.py``); then the row goes. A buffer, not part of the trail."""

    __tablename__ = "access_refusal_windows"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    in_full: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[dict[str, int]] = mapped_column(JsonType, default=dict)


class AuditCheckpointRow(CheckpointBase):
    __tablename__ = "access_audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))


# The runtime Worker's exactly-once markers, under access's own name so services can share a
# database.
processed_messages = processed_messages_table(Base.metadata, "access_processed_messages")
