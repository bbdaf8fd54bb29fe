"""Request and response bodies of the workspace API: queries, jobs, dummy data, the airlock
(documented in the OpenAPI; the portal's pages are built on them)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)

from services.runtime.pagination import Page

__all__ = [
    "DummyFileOut",
    "DummyFilePage",
    "ExceptionIn",
    "JobIn",
    "JobOut",
    "JobPage",
    "OutputRequestIn",
    "QueryIn",
    "QueryOut",
    "QueryPage",
    "ResubmitIn",
    "SourceIn",
    "WorkspaceOut",
    "WorkspaceOutputOut",
    "WorkspaceOutputPage",
    "WorkspaceReviewIn",
    "WorkspaceTable",
    "check_spec",
]


_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _column(value: str) -> str:
    if not _COLUMN.fullmatch(value):
        raise ValueError("a column is named by letters, digits and '_'")
    return value


Column = Annotated[str, AfterValidator(_column)]
"""A column of the output's source (names only: nothing the researcher writes is run)."""


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
    rebuild_needed: bool = Field(
        False,
        description="The workspace's extract holds records an objection, erasure or opt-out "
        "has since taken out: request a new extract (it leaves them out).",
    )
    rebuild_reason: str | None = Field(None, description="Why (no identifier).")


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


class SourceIn(_In):
    """Where an output's data come from: exactly one of query, job (+ file) or table."""

    query: str | None = Field(None, max_length=36, description="A query's id (its result).")
    job: str | None = Field(None, max_length=36, description="A job's id, with `file`.")
    file: str | None = Field(None, max_length=600, description="A file the job wrote.")
    table: str | None = Field(None, max_length=64, description="A table of the extract.")

    @model_validator(mode="after")
    def _one(self) -> SourceIn:
        given = [x for x in (self.query, self.job, self.table) if x is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of query, job or table")
        if (self.job is None) != (self.file is None):
            raise ValueError("a job's output is named by job and file together")
        return self


class OutputRequestIn(_In):
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["table", "regression", "histogram", "survival", "file"] = Field(
        description="table: crosstab/pivot (spec: index, columns, values, aggfunc); "
        "regression: ols|logit|probit (spec: method, dependent, independent); histogram "
        "(spec: column, bins); survival (spec: time, status); file: a job's file as it is, "
        "always for a person's judgement."
    )
    source: SourceIn
    spec: dict[str, Any] = Field(default_factory=dict)
    preset: Literal["acro", "threshold-10", "opensafely"] = "acro"
    exception: str | None = Field(
        None,
        min_length=1,
        max_length=5000,
        description="Exception request: why to release it although it fails a check.",
    )

    @model_validator(mode="after")
    def _spec(self) -> OutputRequestIn:
        try:
            check_spec(self.kind, self.spec)
        except ValidationError as exc:  # named as this field's problem, not a nested model's
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ValueError(f"spec{'.' + where if where else ''}: {first['msg']}") from None
        return self


class TableSpec(_In):
    index: list[Column] = Field(min_length=1, max_length=4)
    columns: list[Column] = Field(default_factory=list, max_length=4)
    values: Column | None = None
    aggfunc: Literal["mean", "median", "sum", "std", "count", "mode"] | None = None


class RegressionSpec(_In):
    method: Literal["ols", "logit", "probit"]
    dependent: Column
    independent: list[Column] = Field(min_length=1, max_length=50)


class HistogramSpec(_In):
    column: Column
    bins: StrictInt = Field(10, ge=1, le=200)


class SurvivalSpec(_In):
    time: Column
    status: Column


class FileSpec(_In):
    pass


_SPECS: dict[str, type[_In]] = {
    "table": TableSpec,
    "regression": RegressionSpec,
    "histogram": HistogramSpec,
    "survival": SurvivalSpec,
    "file": FileSpec,
}


def check_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec, validated for its kind (a ValueError names what is wrong)."""
    return _SPECS[kind].model_validate(spec).model_dump(exclude_none=True)


class ExceptionIn(_In):
    reason: str = Field(
        min_length=1,
        max_length=5000,
        examples=["the small cells are structural zeros of the design"],
    )


class ResubmitIn(_In):
    spec: dict[str, Any] | None = None
    preset: Literal["acro", "threshold-10", "opensafely"] | None = None
    exception: str | None = Field(None, min_length=1, max_length=5000)
    comment: str = Field("", max_length=5000, description="What changed, for the checkers.")


class WorkspaceReviewIn(_In):
    decision: Literal["comment", "return", "approve", "reject"]
    comment: str = Field("", max_length=5000)

    @model_validator(mode="after")
    def _comment(self) -> WorkspaceReviewIn:
        if self.decision in ("comment", "return") and not self.comment.strip():
            raise ValueError("a comment or a return says why")
        return self


class WorkspaceOutputOut(BaseModel):
    id: str
    project_id: str
    author: str
    title: str
    kind: str
    source: dict[str, Any]
    spec: dict[str, Any]
    preset: str
    state: Literal["submitted", "returned", "released", "rejected"]
    revision: int
    status: Literal["pass", "fail", "review"] = Field(description="ACRO's verdict.")
    summary: str = Field(description="ACRO's summary of its checks.")
    checks: dict[str, Any] = Field(
        description="ACRO's record: per check the cells flagged (sdc), per cell the "
        "outcome, and the checks' description (fair)."
    )
    files: list[dict[str, Any]] = Field(description="The output's files (name, bytes, SHA-256).")
    exception: str | None
    reviews: list[dict[str, Any]] = Field(
        description="revision, checker, decision, comment, at (oldest first)."
    )
    approvals: list[str] = Field(description="Checkers who approved this revision.")
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None


class QueryPage(Page[QueryOut]):
    """A page of a workspace's queries, oldest first, without their rows."""


class DummyFilePage(Page[DummyFileOut]):
    """A page of the dummy files on offer, by name."""


class JobPage(Page[JobOut]):
    """A page of a workspace's jobs, oldest first."""


class WorkspaceOutputPage(Page[WorkspaceOutputOut]):
    """A page of workspace outputs, oldest first."""
