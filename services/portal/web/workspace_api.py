"""Access's workspace API as the workspace and output pages call it: where a project's
workspace is, and its lists (queries, jobs, dummy tables) as this person may see them."""

from __future__ import annotations

from typing import Any

from services.portal.apis import Caller
from services.portal.web.researcher import optional

__all__ = ["workspace_items", "workspace_path"]


def workspace_path(project_id: str) -> str:
    """The API path of a project's workspace (its queries, jobs, dummy data, outputs)."""
    return f"/v1/projects/{project_id}/workspace"


def workspace_items(api: Caller, project_id: str, kind: str) -> list[dict[str, Any]]:
    """Every item of one of the workspace's lists (``queries``, ``jobs``, ``dummy``); none
    where the API refuses this person."""
    return optional(api.get_all, "access", f"{workspace_path(project_id)}/{kind}") or []
