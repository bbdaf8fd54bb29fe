"""The end of the demo's researcher story, inside the TRE: bob runs a query and a job in the
project's workspace and asks for the job's table to leave through the airlock; ACRO checks
it and two independent output checkers (dave, erin) release it (docs/workspace.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["JOB_SCRIPT", "QUERY", "workspace_story"]

QUERY = "SELECT GNDR_CD, count(*) AS children FROM CHILD GROUP BY GNDR_CD ORDER BY GNDR_CD"

JOB_SCRIPT = """\
import pandas as pd

child = pd.read_parquet("/data/CHILD.parquet")
cases = pd.read_parquet("/data/CASE.parquet")
rows = child.merge(cases, left_on="CASE_ID_E", right_on="SYSTEM_ID_E", how="inner")
rows[["LAW_TYPE"]].to_csv("/output/children_by_law_type.csv", index=False)
print("children with their case:", len(rows))
"""


class WorkspaceStoryFailed(Exception):
    """A step of the workspace story was refused."""


def workspace_story(
    issuer: Any,
    url: str,
    project_id: str,
    *,
    info: Callable[[str], Any] = lambda _text: None,
    job_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Query, job and one released output on the access API at ``url``; what happened."""

    def h(subject: str, *roles: str) -> dict[str, str]:
        token = issuer.mint(subject, audience="fjo-access", roles=list(roles))
        return {"Authorization": f"Bearer {token}"}

    def ok(r: httpx.Response, what: str) -> dict[str, Any]:
        if r.status_code not in (200, 201, 202):
            raise WorkspaceStoryFailed(f"{what}: HTTP {r.status_code} {r.text[:300]}")
        body: dict[str, Any] = r.json()
        return body

    bob = h("bob", "researcher")
    base = f"/v1/projects/{project_id}/workspace"
    with httpx.Client(base_url=url, timeout=600.0) as http:
        query = ok(http.post(f"{base}/queries", json={"sql": QUERY}, headers=bob), "query")
        info(f"query {query['id']}: {query['rows']} rows, {query['preview']}")
        job = ok(
            http.post(
                f"{base}/jobs",
                json={"name": "by law type", "script": JOB_SCRIPT, "requirements": ["pandas"]},
                headers=bob,
            ),
            "job",
        )
        deadline = time.monotonic() + job_timeout_s
        while job["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise WorkspaceStoryFailed(f"the job did not finish in {job_timeout_s:.0f} s")
            time.sleep(0.5)
            job = ok(http.get(f"{base}/jobs/{job['id']}", headers=bob), "job status")
        if job["state"] != "succeeded":
            raise WorkspaceStoryFailed(f"job {job['state']}: {job['reason']} {job['detail']}")
        info(f"job {job['id']}: {job['state']}, outputs {[o['name'] for o in job['outputs']]}")
        output = ok(
            http.post(
                f"{base}/outputs",
                json={
                    "title": "Children by the law type of their case",
                    "kind": "table",
                    "source": {"job": job["id"], "file": "children_by_law_type.csv"},
                    "spec": {"index": ["LAW_TYPE"]},
                    "preset": "threshold-10",
                },
                headers=bob,
            ),
            "airlock submit",
        )
        info(f"output {output['id']}: ACRO says {output['status']}")
        if output["status"] == "fail":  # threshold-10 suppresses: a fail is not expected
            raise WorkspaceStoryFailed(f"ACRO: {output['summary'][:300]}")
        for checker in ("dave", "erin"):
            output = ok(
                http.post(
                    f"{base}/outputs/{output['id']}/reviews",
                    json={"decision": "approve", "comment": f"checked by {checker}"},
                    headers=h(checker, "output-checker"),
                ),
                f"review ({checker})",
            )
        if output["state"] != "released":
            raise WorkspaceStoryFailed(f"the output is {output['state']} after two approvals")
        table = next(f["name"] for f in output["files"] if f["name"].endswith(".csv"))
        released = http.get(f"{base}/outputs/{output['id']}/files/{table}", headers=bob)
        if released.status_code != 200:
            raise WorkspaceStoryFailed(f"download of the released table: {released.status_code}")
        info(f"output {output['id']}: released by {', '.join(output['approvals'])}")
    return {
        "query": {
            "sql": QUERY,
            "id": query["id"],
            "rows": query["rows"],
            "preview": query["preview"],
        },
        "job": {
            "id": job["id"],
            "state": job["state"],
            "script_sha256": job["script_sha256"],
            "outputs": job["outputs"],
        },
        "output": {
            "id": output["id"],
            "title": output["title"],
            "preset": output["preset"],
            "status": output["status"],
            "summary": output["summary"],
            "state": output["state"],
            "approvals": output["approvals"],
            "table": released.text,
        },
    }
