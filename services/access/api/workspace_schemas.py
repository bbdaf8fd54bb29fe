"""Request and response bodies of the workspace API: queries, jobs, dummy data, the airlock
(documented in the OpenAPI; the portal's pages are built on them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = [
    "DummyFileOut",
    "JobIn",
    "JobOut",
    "QueryIn",
    "QueryOut",
    "WorkspaceOut",
    "WorkspaceTable",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceTable(BaseModel):
    name: str = Field(description="Table name in queries (and file stem in jobs' /data).")
    dataset: str | None
    rows: int | None
    columns: list[dict[str, Any]] = Field(description="name, type, description per column.")


class WorkspaceOut(BaseModel):
    project_id: str
    extract_id: str | None = Field(description="The extract the workspace works on (latest).")
    built_at: datetime | None
    tables: list[WorkspaceTable]
    egress: list[str] = Field(description="Egress the approval permits beyond the airlock.")
    packages: list[str] = Field(description="The job runtime's allow-list of packages.")
    limits: dict[str, Any] = Field(description="Query and job limits.")


class QueryIn(_In):
    sql: str = Field(
        min_length=1,
        max_length=20_000,
        description="One SELECT over the workspace's tables (no file functions).",
        examples=["SELECT GNDR_CD, count(*) AS n FROM CHILD GROUP BY GNDR_CD"],
    )
    preview: StrictInt = Field(100, ge=0, le=1000, description="Rows returned in the answer.")


class QueryOut(BaseModel):
    id: str
    project_id: str
    author: str
    state: Literal["succeeded", "refused"]
    reason: str | None = Field(
        description="Why it was refused: statement, file-access, extension, time-limit, "
        "memory-limit, row-limit, invalid."
    )
    detail: str | None
    sql_sha256: str
    extract_id: str | None
    rows: int | None
    columns: list[dict[str, str]]
    preview: list[list[Any]] = Field(
        default_factory=list,
        description="The first rows (shown in the session; the result "
        "itself stays in the workspace).",
    )
    seconds: float
    created_at: datetime


class DummyFileOut(BaseModel):
    name: str = Field(description="File name under .../workspace/dummy/.")
    table: str
    format: Literal["parquet", "csv"]
    rows: int = Field(description="Made-up rows (no real record behind any of them).")


class JobIn(_In):
    name: str = Field("job", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    script: str = Field(
        min_length=1,
        max_length=200_000,
        description="Python source, run as /job/script.py with the extract at /data, the "
        "whole workspace at /workspace (read-only) and /output to write to.",
    )
    requirements: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Packages from the runtime's allow-list (no versions, nothing installed).",
        examples=[["pandas"]],
    )


class JobOut(BaseModel):
    id: str
    project_id: str
    author: str
    name: str
    state: Literal["queued", "running", "succeeded", "failed"]
    reason: str | None = Field(
        description="How it failed: time-limit, cpu-limit, memory-limit, process-limit, "
        "file-size-limit, crashed, script-failed, interrupted, no-extract."
    )
    detail: str | None
    exit_code: int | None
    script_sha256: str
    requirements: list[str]
    extract_id: str | None
    inputs: list[dict[str, Any]] = Field(description="Files the job could read, with SHA-256.")
    outputs: list[dict[str, Any]] = Field(description="Files it wrote: name, bytes, SHA-256.")
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
