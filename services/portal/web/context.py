"""What every page shares: templates, the signed-in person, CSRF checks, cookies, API errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.portal.apis import ApiError, Apis, Caller
from services.portal.config import PortalSettings
from services.portal.oidc import OidcClient
from services.portal.sessions import SessionStore, SignedIn
from services.portal.workers import WorkerProbes
from services.runtime.html import environment

__all__ = ["Cursor", "PageError", "SignInRequired", "Web", "attachment", "safe_next", "see_other"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

Cursor = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$")]
"""A queue page's ``?cursor=``: the API's ``next_cursor``, passed back to it unchanged."""


class SignInRequired(Exception):
    """No live session: the person is sent to sign in, and back here afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """A page that cannot be shown: its status and what to tell the person."""

    def __init__(self, status: int, title: str, message: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


def safe_next(path: str | None) -> str:
    """A local path to return to after sign-in; anything else (another site, ``//host``,
    a scheme) becomes the home page."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _date(value: Any) -> str:
    """``2027-03-31`` or an ISO timestamp as ``31 March 2027`` (GOV.UK style)."""
    from datetime import date, datetime

    if not value:
        return ""
    text = str(value)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return f"{d.day} {d:%B %Y}"
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return f"{dt.day} {dt:%B %Y at %H:%M}"
    except ValueError:
        return text


def _percent(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return ""


@dataclass
class Web:
    """The portal's collaborators; built once per process by ``create_app``."""

    settings: PortalSettings
    store: SessionStore
    oidc: OidcClient
    apis: Apis
    probes: WorkerProbes

    def __post_init__(self) -> None:
        env = environment(TEMPLATES)
        env.filters["day"] = _date
        env.filters["percent"] = _percent
        self.templates = Jinja2Templates(env=env)

    # -- cookies ---------------------------------------------------------------------------

    @property
    def session_cookie(self) -> str:
        return "__Host-fjo-session" if self.settings.cookie_secure else "fjo-session"

    @property
    def login_cookie(self) -> str:
        return "__Host-fjo-login" if self.settings.cookie_secure else "fjo-login"

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.settings.cookie_secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", secure=self.settings.cookie_secure, httponly=True, samesite="lax"
        )

    # -- who is asking ---------------------------------------------------------------------

    def maybe_person(self, request: Request) -> SignedIn | None:
        return self.store.get(request.cookies.get(self.session_cookie))

    def person(self, request: Request) -> SignedIn:
        """The signed-in person (FastAPI dependency), or off to sign in."""
        who = self.maybe_person(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target if request.method == "GET" else "/")
        return who

    async def checked(self, request: Request) -> SignedIn:
        """The signed-in person behind a form whose CSRF token matches their session's."""
        who = self.person(request)
        form = await request.form()
        token = form.get("csrf_token")
        if not who.csrf_ok(token if isinstance(token, str) else None):
            raise PageError(403, "This form has expired", "Go back, reload the page and try again.")
        return who

    def api(self, who: SignedIn) -> Caller:
        return self.apis.as_caller(who.access_token)

    # -- pages -----------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        who: SignedIn | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.setdefault("errors", [])
        context.setdefault("notice", request.query_params.get("notice"))
        return self.templates.TemplateResponse(
            request,
            template,
            {"who": who, "nav": navigation(who, request.url.path), **context},
            status_code=status,
        )

    def error_page(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            self.maybe_person(request),
            status=status,
            title=title,
            message=message,
        )

    def api_error_page(self, request: Request, exc: ApiError) -> Response:
        if exc.status == 401:
            return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)
        if exc.status == 404:
            return self.error_page(request, 404, "Page not found", "There is nothing here for you.")
        if exc.status == 403:
            return self.error_page(request, 403, "You cannot do this", exc.message)
        return self.error_page(request, exc.status, "That did not work", exc.message)


def see_other(path: str, notice: str | None = None) -> RedirectResponse:
    """After a form: back to a page (Post/Redirect/Get), with a message to show there."""
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(
        path + (f"{joiner}notice={quote(notice)}" if notice else ""), status_code=303
    )


_AREAS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/projects", "Projects", frozenset({"researcher"})),
    ("/panel", "Panel", frozenset({"approver"})),
    ("/sign-off", "Sign-off", frozenset({"data-controller"})),
    ("/checking", "Output checking", frozenset({"output-checker"})),
    ("/review", "Possible matches", frozenset({"link-reviewer"})),
    ("/status", "Status", frozenset({"admin", "operator"})),
)


def navigation(who: SignedIn | None, path: str) -> list[Mapping[str, Any]]:
    """The areas this person's roles open, the current one marked."""
    if who is None:
        return []
    return [
        {"href": href, "text": text, "active": path == href or path.startswith(href + "/")}
        for href, text, roles in _AREAS
        if who.roles & roles
    ]


def attachment(answer: httpx.Response, disposition: str) -> Response:
    """A file an API answered with, passed on as a download named by ``disposition``."""
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": disposition},
    )
