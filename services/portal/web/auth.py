"""Sign in (OIDC code flow with PKCE), the callback, sign out."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.portal.oidc import SignInError
from services.portal.sessions import LOGIN_TTL, SignedIn
from services.portal.web.context import Web, safe_next

__all__ = ["auth_routes"]


def auth_routes(web: Web) -> APIRouter:
    router = APIRouter()

    def callback_url(request: Request) -> str:
        return web.settings.oidc.redirect_url or str(request.url_for("callback"))

    @router.get("/sign-in", summary="Send the browser to the issuer to sign in.")
    def sign_in(
        request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
    ) -> Response:
        try:
            url, pending = web.oidc.start(callback_url(request), safe_next(next))
        except SignInError as exc:
            return web.error_page(request, 502, "Sign-in is not available", str(exc))
        raw = web.store.begin_login(pending)
        response = RedirectResponse(url, status_code=303)
        web.set_cookie(response, web.login_cookie, raw, int(LOGIN_TTL.total_seconds()))
        return response

    @router.get("/auth/callback", name="callback", summary="The issuer's answer.")
    def callback(
        request: Request,
        code: Annotated[str | None, Query(max_length=2000)] = None,
        state: Annotated[str | None, Query(max_length=500)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        pending = web.store.take_login(request.cookies.get(web.login_cookie))
        if pending is None:
            return web.error_page(
                request, 400, "Sign-in has expired", "Start again from the sign-in link."
            )
        if error or not code or not state:
            return web.error_page(request, 400, "You were not signed in", "The issuer refused.")
        try:
            result = web.oidc.finish(pending, code=code, state=state)
        except SignInError as exc:
            return web.error_page(request, 400, "You were not signed in", str(exc))
        raw = web.store.create(
            subject=result.subject,
            name=result.name,
            roles=result.roles,
            access_token=result.access_token,
            id_token=result.id_token,
            token_expires_at=datetime.fromtimestamp(result.expires_at, UTC),
        )
        response = RedirectResponse(pending.next_path, status_code=303)
        web.clear_cookie(response, web.login_cookie)
        lifetime = max(1, min(int(result.expires_at - time.time()), web.settings.session_ttl_s))
        web.set_cookie(response, web.session_cookie, raw, lifetime)
        return response

    # Dependencies as defaults: with postponed annotations FastAPI cannot resolve a name local
    # to this function inside ``Annotated``.
    @router.post("/sign-out", summary="End the session.")
    def sign_out(request: Request, who: SignedIn = Depends(web.checked)) -> Response:
        web.store.end(request.cookies.get(web.session_cookie))
        after = str(request.url_for("signed_out"))
        target = web.oidc.end_session_url(who.id_token, after) or after
        response = RedirectResponse(target, status_code=303)
        web.clear_cookie(response, web.session_cookie)
        return response

    @router.get("/signed-out", name="signed_out", summary="After signing out.")
    def signed_out(request: Request) -> Response:
        return web.render(request, "signed_out.html", None, title="You have signed out")

    return router
