"""Every list access answers pages the same way (``services/runtime/pagination.py``): keyset
on (timestamp, id), each item once and in order, a garbled or forged cursor 422, and a page
after the first still holds only what the caller may see."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.access.storage.models import (
    AirlockOutputRow,
    ExtractRow,
    JobRow,
    WorkspaceQueryRow,
)
from services.runtime.db import transaction
from services.runtime.pagination import INVALID_CURSOR, encode_cursor
from services.runtime.problems import problem_type
from tests.integration.access.conftest import (
    ADMIN,
    CHECKER_1,
    Access,
    active_project,
    register,
)

PER_PROJECT = 5
AT = datetime(2026, 6, 1, tzinfo=UTC)


def _row(kind: type[Any], pid: str, i: int) -> Any:
    """Row ``i`` of one list in project ``pid``: two rows share each instant, so the id breaks
    ties, and the ids are random, so their order is not the insertion order."""
    at = AT + timedelta(seconds=i // 2)
    common = {"id": str(uuid.uuid4()), "project_id": pid}
    if kind is ExtractRow:
        return ExtractRow(**common, requested_by="alice", state="succeeded", requested_at=at)
    if kind is WorkspaceQueryRow:
        return WorkspaceQueryRow(
            **common,
            author="bob",
            sql="SELECT 1",
            sql_sha256="0" * 64,
            state="succeeded",
            created_at=at,
        )
    if kind is JobRow:
        return JobRow(
            **common, author="bob", name="job", script_sha256="0" * 64, state="queued",
            submitted_at=at,
        )  # fmt: skip
    return AirlockOutputRow(
        **common, author="alice", title=f"output {i}", kind="table", source={"query": "q"},
        preset="threshold-10", state="submitted", status="pass", created_at=at, updated_at=at,
    )  # fmt: skip


LISTS = {
    "/v1/projects/{pid}/extracts": ExtractRow,
    "/v1/projects/{pid}/workspace/queries": WorkspaceQueryRow,
    "/v1/projects/{pid}/workspace/jobs": JobRow,
    "/v1/projects/{pid}/workspace/outputs": AirlockOutputRow,
}
"""Each list of a project's objects, and the rows behind it."""


def _stamp(row: Any) -> datetime:
    return (
        getattr(row, "requested_at", None) or getattr(row, "submitted_at", None) or row.created_at
    )


@pytest.fixture
def world(access: Access) -> dict[str, Any]:
    """Project A (alice, bob) and B (mallory), each with PER_PROJECT rows of every list, their
    instants interleaved; the ids of each list's rows per project in (instant, id) order."""
    a = access
    register(a, "alice", "bob", "mallory")
    pids = {
        "a": active_project(a, "alice", ("bob",), title="Project A"),
        "b": active_project(a, "mallory", (), title="Project B"),
    }
    expected: dict[tuple[str, str], list[str]] = {}
    with transaction(a.ctx.sessions) as s:
        for path, kind in LISTS.items():
            for key, pid in pids.items():
                rows = [_row(kind, pid, i) for i in range(PER_PROJECT)]
                s.add_all(rows)
                ordered = sorted(rows, key=lambda r: (_stamp(r), r.id))
                expected[(path, key)] = [r.id for r in ordered]
    return {"pids": pids, "expected": expected}


def _walk(a: Access, path: str, headers: dict[str, str], limit: int = 2) -> list[str]:
    """Every id of a list, following next_cursor; each page holds ``limit`` but the last."""
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = a.client.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        cursor = page["next_cursor"]
        assert len(page["items"]) == limit or cursor is None, page
        ids += [item.get("id") or item.get("subject") for item in page["items"]]
        if cursor is None:
            return ids


def test_every_list_of_a_project_gives_each_of_its_items_once_in_order_and_only_its_own(
    access: Access, world: dict[str, Any]
) -> None:
    a, pids = access, world["pids"]
    bob = a.h("bob", "researcher")  # not a checker: the airlock's list is for members too
    # A forged cursor is only a position: from before everything, still only project A's.
    forged = encode_cursor(datetime(1970, 1, 1, tzinfo=UTC).isoformat(), "")
    for path in LISTS:
        url, own = path.format(pid=pids["a"]), world["expected"][(path, "a")]
        assert _walk(a, url, bob) == own, path
        assert _walk(a, url, bob, limit=200) == own, path
        r = a.client.get(url, params={"cursor": forged}, headers=bob)
        assert [i["id"] for i in r.json()["items"]] == own, path
        # And another project's list stays hidden whatever the cursor.
        r = a.client.get(path.format(pid=pids["b"]), params={"cursor": forged}, headers=bob)
        assert r.status_code == 404, (path, r.text)


def test_the_review_queues_skip_on_every_page_what_the_checker_may_not_review(
    access: Access, world: dict[str, Any]
) -> None:
    a = access
    every = {"/v1/workspace/outputs": "/v1/projects/{pid}/workspace/outputs"}
    # bob checks outputs too, but never those of project A, which he is on.
    bob = a.h("bob", "researcher", "output-checker")
    for queue, path in every.items():
        expected = world["expected"]
        both = sorted(
            expected[(path, "a")] + expected[(path, "b")],
            key=lambda i: _position(a, path, i),
        )
        assert _walk(a, queue, a.h(*CHECKER_1)) == both, queue
        assert _walk(a, queue, bob) == expected[(path, "b")], queue


def _position(a: Access, path: str, ident: str) -> tuple[datetime, str]:
    with a.ctx.sessions() as s:
        row = s.get(LISTS[path], ident)
        return _stamp(row), ident


def test_projects_and_researchers_page_and_a_researcher_sees_only_their_own_projects(
    access: Access,
) -> None:
    a = access
    register(a, "alice", "mallory", "ruth", "sam", "tom")
    mine = []
    for i in range(3):
        for owner in ("alice", "mallory"):
            r = a.client.post(
                "/v1/projects", json={"title": f"{owner} {i}"}, headers=a.h(owner, "researcher")
            )
            assert r.status_code == 201, r.text
            if owner == "alice":
                mine.append(r.json()["id"])
    assert _walk(a, "/v1/projects", a.h("alice", "researcher")) == mine
    assert len(_walk(a, "/v1/projects", a.h(*ADMIN))) == 6
    assert _walk(a, "/v1/researchers", a.h(*ADMIN)) == ["alice", "mallory", "ruth", "sam", "tom"]


def _b64(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


GARBLED = ["!!", "%%", _b64(b"x|y"), _b64(b"2026-01-01|x|y"), _b64(b"2026-01-01T00:00\0|x")]


def test_a_garbled_cursor_is_422_invalid_cursor_on_every_list(
    access: Access, world: dict[str, Any]
) -> None:
    a, pid = access, world["pids"]["a"]
    lists = [path.format(pid=pid) for path in LISTS] + [
        "/v1/projects",
        "/v1/researchers",
        "/v1/workspace/outputs",
        f"/v1/projects/{pid}/workspace/dummy",
    ]
    headers = a.h("bob", "researcher", "output-checker", "admin")
    for url in lists:
        for cursor in GARBLED:
            r = a.client.get(url, params={"cursor": cursor}, headers=headers)
            assert r.status_code == 422, (url, cursor, r.text)
            assert r.json()["type"] == problem_type(INVALID_CURSOR), (url, r.text)
