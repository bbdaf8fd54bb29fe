"""Server-side sessions: a random id in a cookie, everything else in the portal's store."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from services.portal import storage as t
from services.runtime.db import transaction

__all__ = ["LOGIN_TTL", "PendingLogin", "SessionStore", "SignedIn"]

LOGIN_TTL = timedelta(minutes=10)
"""How long a sign-in may take at the issuer before it has to start again."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite gives timestamps back without their zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the callback checks against: the state, nonce and PKCE verifier it was sent with."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a session cookie, and the token the portal forwards for them."""

    subject: str
    name: str
    roles: frozenset[str]
    access_token: str
    id_token: str | None
    csrf_token: str
    expires_at: datetime

    def has(self, role: str) -> bool:
        return role in self.roles

    def csrf_ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate, self.csrf_token)


class SessionStore:
    """Sign-ins in progress and sessions, on the portal's database."""

    def __init__(self, sessions: sessionmaker[Session], *, ttl: timedelta) -> None:
        self._sessions = sessions
        self._ttl = ttl

    def begin_login(self, pending: PendingLogin) -> str:
        """Record a sign-in in progress; the raw id goes into a short-lived cookie."""
        raw = secrets.token_urlsafe(32)
        with transaction(self._sessions) as s:
            s.execute(delete(t.logins).where(t.logins.c.expires_at < _now()))
            s.execute(
                insert(t.logins).values(
                    id_hash=_hash(raw),
                    state=pending.state,
                    nonce=pending.nonce,
                    code_verifier=pending.code_verifier,
                    redirect_uri=pending.redirect_uri,
                    next_path=pending.next_path,
                    expires_at=_now() + LOGIN_TTL,
                )
            )
        return raw

    def take_login(self, raw: str | None) -> PendingLogin | None:
        """The sign-in in progress for this cookie, used once (deleted as it is read)."""
        if not raw:
            return None
        with transaction(self._sessions) as s:
            row = s.execute(select(t.logins).where(t.logins.c.id_hash == _hash(raw))).first()
            if row is None:
                return None
            s.execute(delete(t.logins).where(t.logins.c.id_hash == row.id_hash))
            if _aware(row.expires_at) < _now():
                return None
            return PendingLogin(
                row.state, row.nonce, row.code_verifier, row.redirect_uri, row.next_path
            )

    def create(
        self,
        *,
        subject: str,
        name: str,
        roles: frozenset[str],
        access_token: str,
        id_token: str | None,
        token_expires_at: datetime,
    ) -> str:
        """A new session (never a reused id: no fixation); the raw id for the cookie."""
        raw = secrets.token_urlsafe(32)
        expires = min(_now() + self._ttl, token_expires_at)
        with transaction(self._sessions) as s:
            s.execute(delete(t.sessions).where(t.sessions.c.expires_at < _now()))
            s.execute(
                insert(t.sessions).values(
                    id_hash=_hash(raw),
                    subject=subject,
                    name=name,
                    roles=sorted(roles),
                    access_token=access_token,
                    id_token=id_token,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=_now(),
                    expires_at=expires,
                )
            )
        return raw

    def get(self, raw: str | None) -> SignedIn | None:
        """The live session for this cookie, or None (unknown or expired)."""
        if not raw:
            return None
        with self._sessions() as s:
            row = s.execute(select(t.sessions).where(t.sessions.c.id_hash == _hash(raw))).first()
        if row is None or _aware(row.expires_at) <= _now():
            return None
        return SignedIn(
            subject=row.subject,
            name=row.name,
            roles=frozenset(row.roles),
            access_token=row.access_token,
            id_token=row.id_token,
            csrf_token=row.csrf_token,
            expires_at=_aware(row.expires_at),
        )

    def end(self, raw: str | None) -> None:
        """Sign out: the session row is gone, so the cookie is worth nothing."""
        if not raw:
            return
        with transaction(self._sessions) as s:
            s.execute(delete(t.sessions).where(t.sessions.c.id_hash == _hash(raw)))
