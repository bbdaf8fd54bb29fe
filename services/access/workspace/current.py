"""What a workspace works on: its project's latest built extract and that extract's tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.access.storage.models import ExtractRow

__all__ = ["WorkspaceTable", "current_extract", "extract_tables"]


@dataclass(frozen=True, slots=True)
class WorkspaceTable:
    name: str  # CHILD, CASE, ...: the Parquet file's stem
    dataset: str | None
    path: Path
    rows: int | None
    sha256: str | None


def current_extract(session: Session, project_id: str) -> ExtractRow | None:
    """The project's most recently built extract (queries and jobs work on it)."""
    return session.execute(
        select(ExtractRow)
        .where(ExtractRow.project_id == project_id, ExtractRow.state == "succeeded")
        .order_by(ExtractRow.finished_at.desc(), ExtractRow.id)
        .limit(1)
    ).scalar_one_or_none()


def extract_tables(extract: ExtractRow) -> dict[str, WorkspaceTable]:
    """Table name → its Parquet file, from the extract's manifest."""
    folder = Path(extract.directory or "")
    out: dict[str, WorkspaceTable] = {}
    for f in (extract.manifest or {}).get("files", []):
        if f.get("format") != "parquet":
            continue
        name = Path(str(f["name"])).stem
        out[name] = WorkspaceTable(
            name=name,
            dataset=f.get("dataset"),
            path=folder / str(f["name"]),
            rows=f.get("rows"),
            sha256=f.get("sha256"),
        )
    return out
