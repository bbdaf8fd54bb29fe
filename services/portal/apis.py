"""The services' HTTP APIs as the portal calls them: always with the signed-in person's token.

The portal holds no authority of its own: every read and every change is the API's call
under the person's bearer token, so a page can only show or do what the API allows them.
An API's refusal comes back as ``ApiError`` with its status and problem document. A list
comes a page at a time (``{"items": [...], "next_cursor": ...}``): ``page`` reads one, for a
page that offers "Next page"; ``get_all`` follows the cursors, where a page needs every item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.portal.config import ApiUrls

__all__ = ["ApiError", "Apis", "Caller"]

_ALL_PAGE = 200
"""The page size ``get_all`` asks for: the APIs' largest (``PageLimit``)."""


@dataclass
class ApiError(Exception):
    """An API said no (or could not be reached: status 502)."""

    status: int
    title: str
    detail: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}" if self.detail else self.title

    @property
    def message(self) -> str:
        """What to tell the person: the API's own words (problem documents carry no data)."""
        if self.errors:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'}: {e.get('msg')}"
                for e in self.errors
            )
            return f"{self.title}: {where}"
        return self.detail or self.title


class Apis:
    """One pooled HTTP client per API; ``as_caller`` binds a person's token to them."""

    def __init__(self, urls: ApiUrls, *, transport: httpx.BaseTransport | None = None) -> None:
        self.urls = urls
        self._clients = {
            name: httpx.Client(base_url=url, timeout=urls.timeout_s, transport=transport)
            for name, url in (("access", urls.access), ("link", urls.link), ("ingest", urls.ingest))
        }

    def client(self, name: str) -> httpx.Client:
        return self._clients[name]

    def as_caller(self, token: str) -> Caller:
        return Caller(self, token)

    def public(self, api: str, path: str, **params: Any) -> httpx.Response:
        """A call without anyone's token, for what an API publishes to all (the register)."""
        try:
            response = self.client(api).get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise ApiError(502, f"The {api} service cannot be reached", type(exc).__name__) from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


class Caller:
    """The APIs on behalf of one signed-in person."""

    def __init__(self, apis: Apis, token: str) -> None:
        self._apis = apis
        self._headers = {"Authorization": f"Bearer {token}"}

    def request(
        self,
        api: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        client = self._apis.client(api)
        try:
            response = client.request(
                method,
                path,
                json=json,
                params=params,
                headers=self._headers,
                timeout=client.timeout if timeout is None else httpx.Timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise ApiError(502, f"The {api} service cannot be reached", type(exc).__name__) from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get(self, api: str, path: str, **params: Any) -> Any:
        return self.request(api, "GET", path, params=params or None).json()

    def page(self, api: str, path: str, cursor: str | None = None, **params: Any) -> Any:
        """One page of a list, from ``cursor`` (the first page without)."""
        return self.get(api, path, **params, **({"cursor": cursor} if cursor else {}))

    def get_all(self, api: str, path: str, **params: Any) -> list[Any]:
        """Every item of a list, in its order, following each page's ``next_cursor``."""
        items: list[Any] = []
        cursor = None
        while True:
            page = self.page(api, path, cursor, limit=_ALL_PAGE, **params)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def post(self, api: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        response = self.request(api, "POST", path, json=body, timeout=timeout)
        return response.json() if response.content else None

    def patch(self, api: str, path: str, body: Any) -> Any:
        return self.request(api, "PATCH", path, json=body).json()


def _error(response: httpx.Response) -> ApiError:
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    title, detail, errors = doc.get("title"), doc.get("detail"), doc.get("errors")
    return ApiError(
        response.status_code,
        title if isinstance(title, str) and title else response.reason_phrase or "Error",
        detail if isinstance(detail, str) else "",
        errors if isinstance(errors, list) else [],
    )
