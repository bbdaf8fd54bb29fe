"""The project's workspace: what it holds, SQL queries next to the data, dummy data.

Queries run in the API process (DuckDB, confined: ``workspace/query.py``) outside any
database transaction; each one, run or refused, is recorded and audited with its SQL's
SHA-256. Its result is kept in the workspace (``queries/<id>.parquet``) for jobs and the
airlock; the answer shows the first rows in the member's session.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access.api.deps import (
    authorised_data,
    conflict,
    not_found,
    problems,
    unit,
)
from services.access.api.workspace_schemas import (
    DummyFileOut,
    DummyFilePage,
    QueryIn,
    QueryOut,
    QueryPage,
    WorkspaceOut,
    WorkspaceTable,
)
from services.access.bootstrap import AccessContext
from services.access.domain.dummy import DummyColumn, dummy_table
from services.access.domain.generalisation import DatePrecision
from services.access.storage.models import ExtractRow, ProjectApprovalRow, WorkspaceQueryRow
from services.access.workspace.current import current_extract, extract_tables
from services.access.workspace.files import WorkspacePaths, read_regular_file, sha256_of
from services.access.workspace.query import QueryLimits, rows_of, run_query
from services.runtime.auth import AuthenticatedRoute, Principal
from services.runtime.pagination import (
    PageCursor,
    PageLimit,
    decode_cursor,
    encode_cursor,
    keyset_page,
)
from services.runtime.problems import problem_type

__all__ = ["query_out", "workspace_extract", "workspace_paths", "workspace_router"]

_MEMBERS = "an accredited approved member of an active project is required"
_ARROW = {
    "string": pa.string(),
    "date": pa.date32(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
}


def workspace_paths(ctx: AccessContext, project_id: str) -> WorkspacePaths:
    return WorkspacePaths(ctx.settings.extracts.directory, project_id)


def workspace_extract(session: Session, project_id: str) -> ExtractRow:
    """The extract the workspace works on; 409 while it has none."""
    extract = current_extract(session, project_id)
    if extract is None:
        raise conflict(
            "the workspace has no extract yet: request one",
            "project",
            project_id,
            project_id,
            kind="no-extract",
        )
    return extract


def query_out(row: WorkspaceQueryRow, preview: list[list[Any]] | None = None) -> QueryOut:
    return QueryOut(
        id=row.id,
        project_id=row.project_id,
        author=row.author,
        state=row.state,  # type: ignore[arg-type]
        reason=row.reason,
        detail=row.detail,
        sql_sha256=row.sql_sha256,
        extract_id=row.extract_id,
        rows=row.rows,
        columns=list(row.columns or []),
        preview=preview or [],
        seconds=row.seconds,
        created_at=row.created_at,
    )


def _dictionary(extract: ExtractRow) -> list[dict[str, Any]]:
    path = Path(extract.directory or "") / "data_dictionary.json"
    columns: list[dict[str, Any]] = json.loads(read_regular_file(path, limit=10 << 20))["columns"]
    return columns


def workspace_router(ctx: AccessContext, auth: Any) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["workspace"], route_class=AuthenticatedRoute)
    settings = ctx.settings.workspace

    @router.get(
        "/projects/{project_id}/workspace",
        summary="The project's workspace: its extract's tables, permitted egress, limits.",
        responses=problems(403, 404, 409),
    )
    def get_workspace(project_id: str, principal: Principal = Depends(auth)) -> WorkspaceOut:
        with unit(ctx, principal, "workspace.read") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            extract = current_extract(s, project_id)
            approval = s.get(ProjectApprovalRow, project_id)
            tables: list[WorkspaceTable] = []
            if extract is not None:
                dictionary = _dictionary(extract)
                for t in extract_tables(extract).values():
                    tables.append(
                        WorkspaceTable(
                            name=t.name,
                            dataset=t.dataset,
                            rows=t.rows,
                            columns=[
                                {k: c[k] for k in ("column", "type", "description")}
                                for c in dictionary
                                if c["table"] == t.name
                            ],
                        )
                    )
            return WorkspaceOut(
                project_id=project_id,
                extract_id=extract.id if extract else None,
                built_at=extract.finished_at if extract else None,
                tables=tables,
                egress=list(approval.egress or []) if approval else [],
                packages=sorted(settings.jobs.packages),
                limits={
                    "query": settings.query.model_dump(),
                    "job": settings.jobs.model_dump(exclude={"bwrap", "sandbox_uid", "packages"}),
                },
                rebuild_needed=extract is not None and extract.rebuild_reason is not None,
                rebuild_reason=extract.rebuild_reason if extract else None,
            )

    @router.post(
        "/projects/{project_id}/workspace/queries",
        status_code=status.HTTP_201_CREATED,
        summary="Run one SELECT over the workspace's tables (DuckDB, confined, limited). "
        "Refused queries answer 422 with their reason and are recorded and audited too.",
        responses=problems(400, 403, 404, 409, 422),
    )
    def post_query(
        project_id: str, body: QueryIn, principal: Principal = Depends(auth)
    ) -> QueryOut:
        with unit(ctx, principal, "workspace.query") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            extract = workspace_extract(s, project_id)
            extract_id = extract.id
            tables = {name: t.path for name, t in extract_tables(extract).items()}
        q = settings.query
        outcome = run_query(
            body.sql,
            tables,
            QueryLimits(
                memory_mb=q.memory_mb,
                threads=q.threads,
                timeout_s=q.timeout_s,
                max_rows=q.max_rows,
            ),
        )
        query_id = str(uuid.uuid4())
        result_sha256 = None
        if outcome.table is not None:
            path = workspace_paths(ctx, project_id).query_result(query_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(outcome.table, path, compression="zstd")
            result_sha256 = sha256_of(path)
        sql_sha256 = hashlib.sha256(body.sql.encode()).hexdigest()
        with unit(ctx, principal, "workspace.query") as s:
            row = WorkspaceQueryRow(
                id=query_id,
                project_id=project_id,
                author=principal.subject,
                sql=body.sql,
                sql_sha256=sql_sha256,
                extract_id=extract_id,
                state="refused" if outcome.refused else "succeeded",
                reason=outcome.reason,
                detail=outcome.detail,
                rows=None if outcome.table is None else outcome.table.num_rows,
                columns=outcome.columns,
                result_sha256=result_sha256,
                seconds=round(outcome.seconds, 3),
            )
            s.add(row)
            s.flush()
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="workspace.query",
                outcome="refused" if outcome.refused else "ok",
                object_type="query",
                object_id=query_id,
                project_id=project_id,
                detail={
                    "sql_sha256": sql_sha256,
                    "extract_id": extract_id,
                    "rows": row.rows,
                    "reason": outcome.reason,
                    "result_sha256": result_sha256,
                },
            )
            preview = (
                rows_of(outcome.table.slice(0, body.preview)) if outcome.table is not None else []
            )
            out = query_out(row, preview)
        if outcome.refused:
            raise HTTPException(
                422,
                detail={
                    "type": problem_type("query-refused"),
                    "title": "Query refused",
                    "detail": outcome.detail,
                    "reason": outcome.reason,
                    "query_id": query_id,
                },
            )
        return out

    @router.get(
        "/projects/{project_id}/workspace/queries",
        summary="The workspace's queries (newest last), without their rows, a page at a time.",
        responses=problems(403, 404, 409, 422),
    )
    def list_queries(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> QueryPage:
        with unit(ctx, principal, "workspace.query.list") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            items, after = keyset_page(
                s.scalars,
                select(WorkspaceQueryRow).where(WorkspaceQueryRow.project_id == project_id),
                (WorkspaceQueryRow.created_at, WorkspaceQueryRow.id),
                limit=limit,
                cursor=cursor,
                item=query_out,
            )
            return QueryPage(items=items, next_cursor=after)

    @router.get(
        "/projects/{project_id}/workspace/queries/{query_id}",
        summary="One query with the first rows of its result (audited).",
        responses=problems(403, 404, 409, 422),
    )
    def get_query(
        project_id: str, query_id: str, preview: int = 100, principal: Principal = Depends(auth)
    ) -> QueryOut:
        if not 0 <= preview <= 1000:
            raise HTTPException(
                422,
                detail={
                    "type": problem_type("invalid-request"),
                    "title": "preview is 0 to 1000 rows",
                },
            )
        with unit(ctx, principal, "workspace.query.read") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            row = s.get(WorkspaceQueryRow, query_id)
            if row is None or row.project_id != project_id:
                raise not_found("query", query_id, project_id)
            rows: list[list[Any]] = []
            if row.state == "succeeded" and preview:
                path = workspace_paths(ctx, project_id).query_result(query_id)
                rows = rows_of(pq.read_table(path).slice(0, preview))
                ctx.audit.append(
                    s,
                    actor=principal.subject,
                    action="workspace.query.read",
                    object_type="query",
                    object_id=query_id,
                    project_id=project_id,
                    detail={"rows_shown": len(rows)},
                )
            return query_out(row, rows)

    def dummy_files(s: Any, project_id: str) -> dict[str, tuple[str, str, list[DummyColumn]]]:
        """File name → (table, format, columns) of the workspace's dummy data."""
        extract = workspace_extract(s, project_id)
        out: dict[str, tuple[str, str, list[DummyColumn]]] = {}
        dictionary = _dictionary(extract)
        for t in extract_tables(extract).values():
            columns = [
                DummyColumn(c["column"], c["type"], bool(c["project_pseudonym"]))
                for c in dictionary
                if c["table"] == t.name
            ]
            for fmt in ("parquet", "csv"):
                out[f"{t.name}.{fmt}"] = (t.name, fmt, columns)
        return out

    @router.get(
        "/projects/{project_id}/workspace/dummy",
        summary="The dummy data on offer: the extract's schema with made-up rows, by name, a "
        "page at a time.",
        responses=problems(403, 404, 409, 422),
    )
    def list_dummy(
        project_id: str,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
        principal: Principal = Depends(auth),
    ) -> DummyFilePage:
        with unit(ctx, principal, "workspace.dummy.list") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            # The files are the extract's tables (two each), not rows: keyset on the name.
            (after,) = decode_cursor(cursor, 1) if cursor else ("",)
            files = [
                DummyFileOut(name=name, table=table, format=fmt, rows=settings.dummy_rows)
                for name, (table, fmt, _) in sorted(dummy_files(s, project_id).items())
                if name > after
            ]
        more = len(files) > limit
        return DummyFilePage(
            items=files[:limit], next_cursor=encode_cursor(files[limit - 1].name) if more else None
        )

    @router.get(
        "/projects/{project_id}/workspace/dummy/{name}",
        summary="Download one dummy table (no real record behind it; audited).",
        response_class=Response,
        responses=problems(403, 404, 409),
    )
    def get_dummy(project_id: str, name: str, principal: Principal = Depends(auth)) -> Response:
        with unit(ctx, principal, "workspace.dummy.download") as s:
            authorised_data(s, principal, project_id, _MEMBERS)
            files = dummy_files(s, project_id)
            if name not in files:
                raise not_found("dummy-file", name, project_id)
            table, fmt, columns = files[name]
            extract = workspace_extract(s, project_id)
            approved = (extract.manifest or {}).get("approved", {})
            dataset = next(
                (t.dataset for t in extract_tables(extract).values() if t.name == table), None
            )
            data = dummy_table(
                dataset or "",
                columns,
                settings.dummy_rows,
                seed=f"{project_id}|{extract.id}",
                window=(
                    date.fromisoformat(approved.get("window_start", "2015-01-01")),
                    date.fromisoformat(approved.get("window_end", "2019-12-31")),
                ),
                precision=DatePrecision(approved.get("date_precision", "month")),
            )
            arrow = pa.table({c.name: pa.array(data[c.name], type=_ARROW[c.type]) for c in columns})
            buffer = io.BytesIO()
            if fmt == "parquet":
                pq.write_table(arrow, buffer)
            else:
                pacsv.write_csv(arrow, buffer)
            ctx.audit.append(
                s,
                actor=principal.subject,
                action="workspace.dummy.download",
                object_type="dummy-file",
                object_id=name,
                project_id=project_id,
                detail={"rows": settings.dummy_rows, "extract_id": extract.id},
            )
        media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
        return Response(
            buffer.getvalue(),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="DUMMY_{name}"'},
        )

    return router
