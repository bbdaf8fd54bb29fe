"""SQL over a workspace's own Parquet files: DuckDB, in memory, confined before the first
statement of the researcher's is read.

The connection starts with extension installing and loading off and no temporary directory
(nothing spills to disk); one view per table of the workspace's extract is created; then
external access is switched off (only the views' own files stay readable: ``allowed_paths``),
limits are set and the configuration is locked, so no SQL can switch any of it back. The
statement must pass ``domain.sql_guard`` first. A timer interrupts it at the deadline; the
result is read in batches and refused past the row limit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from services.access.domain.sql_guard import QueryRefusal, refusal_of_tree

__all__ = ["QueryLimits", "QueryOutcome", "confined_connection", "rows_of", "run_query"]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    memory_mb: int = 256
    threads: int = 1
    timeout_s: float = 10.0
    max_rows: int = 10_000


@dataclass(slots=True)
class QueryOutcome:
    """A result (``table``) or a refusal (``reason`` and ``detail``)."""

    table: pa.Table | None = None
    reason: str | None = None
    detail: str | None = None
    seconds: float = 0.0
    columns: list[dict[str, str]] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.reason is not None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def confined_connection(
    tables: Mapping[str, Path], limits: QueryLimits
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table, then locked (the module's docstring)."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "allow_community_extensions": "false",
            "allow_unsigned_extensions": "false",
            "temp_directory": "",
        },
    )
    tables = {name: Path(path).resolve() for name, path in tables.items()}  # allowed_paths
    for name, path in tables.items():
        # Names and paths come from the extract's manifest (access wrote it), quoted here.
        source = f"read_parquet({_literal(str(path))})"
        con.execute(f"CREATE VIEW {_quote(name)} AS SELECT * FROM {source}")  # noqa: S608
    paths = ", ".join(_literal(str(p)) for p in tables.values())
    for statement in (
        f"SET allowed_paths = [{paths}]",
        "SET enable_external_access = false",
        f"SET memory_limit = '{int(limits.memory_mb)}MB'",
        f"SET threads = {int(limits.threads)}",
        "SET lock_configuration = true",
    ):
        con.execute(statement)
    return con


def _classify(exc: duckdb.Error) -> tuple[str, str]:
    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.InterruptException):
        return QueryRefusal.TIME_LIMIT, "the query ran past its time limit and was stopped"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryRefusal.MEMORY_LIMIT, "the query needed more memory than its limit"
    if isinstance(exc, duckdb.PermissionException):
        if "extension" in text.lower():
            return QueryRefusal.EXTENSION, text
        return QueryRefusal.FILE_ACCESS, text
    return QueryRefusal.INVALID, text


def run_query(sql: str, tables: Mapping[str, Path], limits: QueryLimits) -> QueryOutcome:
    """Run one SELECT over ``tables`` (name → Parquet file) within ``limits``."""
    started = time.monotonic()
    outcome = _run(sql, tables, limits)
    outcome.seconds = time.monotonic() - started
    return outcome


def _run(sql: str, tables: Mapping[str, Path], limits: QueryLimits) -> QueryOutcome:
    con = confined_connection(tables, limits)
    timer = threading.Timer(limits.timeout_s, con.interrupt)
    try:
        statements = con.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = {s.type for s in statements}
            if kinds & {duckdb.StatementType.LOAD, duckdb.StatementType.EXTENSION}:
                return QueryOutcome(reason=QueryRefusal.EXTENSION, detail="extensions are off")
            return QueryOutcome(reason=QueryRefusal.STATEMENT, detail="exactly one SELECT")
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open on the connection.
        ((tree_json,),) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
        refusal = refusal_of_tree(json.loads(tree_json), frozenset(tables))
        if refusal is not None:
            return QueryOutcome(reason=refusal[0], detail=refusal[1])
        timer.start()
        reader = con.sql(sql).to_arrow_reader(batch_size=min(limits.max_rows + 1, 8192))
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            if rows > limits.max_rows:
                return QueryOutcome(
                    reason=QueryRefusal.ROW_LIMIT,
                    detail=f"more than {limits.max_rows} rows: aggregate or filter",
                )
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return QueryOutcome(
            table=table,
            columns=[{"name": f.name, "type": str(f.type)} for f in table.schema],
        )
    except duckdb.Error as exc:
        reason, detail = _classify(exc)
        return QueryOutcome(reason=reason, detail=detail)
    finally:
        timer.cancel()
        con.close()


def rows_of(table: pa.Table) -> list[list[Any]]:
    """The table as JSON-ready rows (dates as ISO strings)."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[_json(v) for v in row] for row in zip(*columns, strict=True)] if columns else []


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
