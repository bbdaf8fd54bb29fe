"""The portal's own store: sign-ins in progress and sessions, nothing from another service.

A session row is found by the SHA-256 of the random id in the person's cookie, so a copy of
the table does not give anyone a usable cookie. It holds the person's access token (the
portal forwards it to the APIs) and the session's CSRF token.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Text

__all__ = ["logins", "metadata", "sessions"]

metadata = MetaData()

logins = Table(
    "portal_logins",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("state", String(128), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("next_path", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "portal_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("subject", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("access_token", Text, nullable=False),
    Column("id_token", Text, nullable=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
