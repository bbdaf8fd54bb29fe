"""Egress: what may leave the TRE other than through the airlock. Only what the panel's
approval names explicitly; nothing by default (the SATRE view: a row-level download is
egress)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["ROW_LEVEL_FORMATS", "Egress", "download_refusal"]

ROW_LEVEL_FORMATS = frozenset({"parquet", "csv"})
"""An extract's data files; its manifest and data dictionary describe it and stay readable."""


class Egress(StrEnum):
    ROW_LEVEL_DOWNLOAD = "row-level-download"


def download_refusal(file_format: str | None, permitted: Iterable[str]) -> str | None:
    """Why a member may not download this file of an extract (None: they may)."""
    if file_format in ROW_LEVEL_FORMATS and Egress.ROW_LEVEL_DOWNLOAD not in set(permitted):
        return (
            "row-level data stay in the workspace: the approval does not permit "
            "row-level download (query it, run a job, release outputs through the airlock)"
        )
    return None
