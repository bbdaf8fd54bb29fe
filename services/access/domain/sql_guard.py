"""What a workspace query may be: one SELECT over the workspace's tables, no file functions.

Pure: it reads the statement's syntax tree as DuckDB serialises it (``json_serialize_sql``)
and says why it is refused, or None. It is one of three walls (docs/workspace.md): DuckDB's
own configuration (external access off, extensions off, locked) refuses what this misses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["ALLOWED_TABLE_FUNCTIONS", "QueryRefusal", "refusal_of_tree"]

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
"""Table functions that compute rows rather than read them (every reader is refused)."""

# A table name that DuckDB would take for a file or URL (a "replacement scan").
_FILE_LIKE = re.compile(r"[/\\:]|\.(csv|tsv|parquet|json|ndjson|jsonl|txt|gz|zst|db|duckdb)$", re.I)


class QueryRefusal:
    """Reasons, stable strings that the API, the audit and the tests use."""

    STATEMENT = "statement"  # not exactly one SELECT
    FILE_ACCESS = "file-access"  # a file, URL or reader function
    EXTENSION = "extension"  # INSTALL/LOAD or an extension's function
    TIME_LIMIT = "time-limit"
    MEMORY_LIMIT = "memory-limit"
    ROW_LIMIT = "row-limit"
    INVALID = "invalid"  # DuckDB could not parse, bind or run it


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def refusal_of_tree(tree: dict[str, Any], tables: frozenset[str]) -> tuple[str, str] | None:
    """(reason, detail) if the serialised statement reads anything but ``tables`` (and the
    names its own WITH clauses define), else None."""
    if tree.get("error"):
        return QueryRefusal.INVALID, str(tree.get("error_message", "not a valid SELECT"))[:300]
    statements = tree.get("statements") or []
    if len(statements) != 1:
        return QueryRefusal.STATEMENT, "exactly one SELECT statement"
    defined = {
        str(entry.get("key", "")).lower()
        for node in _nodes(statements)
        for entry in (node.get("cte_map", {}) or {}).get("map", [])
        if isinstance(entry, dict)
    }
    known = {t.lower() for t in tables} | defined
    for node in _nodes(statements):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                return QueryRefusal.FILE_ACCESS, f"table function {name!r} is not allowed"
        elif kind == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            schema = str(node.get("schema_name", "") or "").lower()
            catalog = str(node.get("catalog_name", "") or "").lower()
            if (
                _FILE_LIKE.search(name)
                or schema not in ("", "main")
                or catalog not in ("", "memory")
            ):
                return QueryRefusal.FILE_ACCESS, "only the workspace's tables can be read"
            if name.lower() not in known:
                return QueryRefusal.INVALID, f"no table {name!r} in the workspace"
    return None
