"""The few Kubernetes API calls the job runner makes, on httpx with the pod's own
ServiceAccount token and the cluster CA (no ``kubernetes`` package: five calls do not need
it). The token is read at every call: a projected token is rotated by the kubelet.

What access may do here is what its namespaced Role grants (deploy/manifests/jobs.py):
create, read and delete Jobs, read Pods and their logs, in its own namespace only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["KubeApi", "KubeApiError"]


class KubeApiError(Exception):
    """The API server refused a call or could not be reached; ``status`` is None then."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class KubeApi:
    base_url: str
    namespace: str
    token_file: Path
    ca_file: Path
    timeout_s: float = 10.0
    client: httpx.Client | None = None  # a test's transport; otherwise one per call

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        try:
            if self.client is not None:
                response = self.client.request(method, path, headers=headers, **kw)
            else:
                with httpx.Client(
                    base_url=self.base_url, verify=str(self.ca_file), timeout=self.timeout_s
                ) as client:
                    response = client.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise KubeApiError(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            # The API's Status message names the object, never the job's data.
            message = response.text[:300]
            raise KubeApiError(
                f"{method} {path}: {response.status_code} {message}", response.status_code
            )
        return response

    def _token(self) -> str:
        try:
            return self.token_file.read_text().strip()
        except OSError as exc:
            raise KubeApiError(f"no ServiceAccount token at {self.token_file}") from exc

    def _jobs(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs"

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._request("POST", self._jobs(), json=body).json()
        return out

    def get_job(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", f"{self._jobs()}/{name}").json()
        return out

    def delete_job(self, name: str) -> None:
        """Delete a Job and (in the background) its pods; gone already is fine."""
        try:
            self._request(
                "DELETE",
                f"{self._jobs()}/{name}",
                json={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
        except KubeApiError as exc:
            if exc.status != 404:
                raise

    def job_pods(self, name: str) -> list[dict[str, Any]]:
        found = self._request(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/pods",
            params={"labelSelector": f"job-name={name}"},
        ).json()
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def pod_log(self, pod: str, container: str, limit_bytes: int) -> bytes:
        """The container's log (its head, up to ``limit_bytes``); b"" once the pod is gone."""
        try:
            return self._request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/pods/{pod}/log",
                params={"container": container, "limitBytes": str(limit_bytes)},
            ).content
        except KubeApiError as exc:
            if exc.status in (400, 404):
                return b""
            raise
