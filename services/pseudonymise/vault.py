"""The identifier vault: what pseudonymise keeps to re-encode a person after a key rotation.

For every person record (children, adult parties, spine people) the vault holds, sealed
(``domain.vault``: a data key per row, wrapped by a KEK from a mounted secret), only the
fields the linkage keys are made from (record id, NHS number, names, date of birth, sex,
postcode, address, address history), with what re-publishing needs in clear: the record
token (a keyed pseudonym), its type, source and version, and the input event and delivery
ids (output event ids derive from them). Content fields are not kept: a rotation re-keys
linkage only, so access's content needs nothing.

Only pseudonymise's database holds the vault; no topic carries it and nothing here logs an
identifier. Rows are keyed by (record token, record version): a spine person's every version
is kept (link builds a person's history from them), other records' latest is re-encoded.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from services.pseudonymise.domain import Role
from services.pseudonymise.domain.vault import (
    KeyEncryptionKey,
    Sealed,
    open_sealed,
    rewrap,
    seal,
)
from services.runtime.db import insert_for

__all__ = [
    "Vault",
    "VaultEntry",
    "identifier_fields",
    "metadata",
    "progress",
    "vault",
]

log = logging.getLogger("fjo.pseudonymise.vault")

metadata = MetaData()

vault = Table(
    "pseudonymise_vault",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("record_version", Integer, primary_key=True),
    Column("record_type", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("input_event_id", String(36), nullable=False),
    Column("delivery_id", String(128), nullable=True),
    Column("kek_id", String(32), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)

progress = Table(
    "pseudonymise_reencode_progress",
    metadata,
    # How far a re-encode under key_version has published, per shard and phase: a rerun
    # resumes after last_token.
    Column("key_version", Integer, primary_key=True),
    Column("shard", String(16), primary_key=True),
    Column("phase", String(16), primary_key=True),
    Column("last_token", String(128), nullable=False),
    Column("done", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_KEPT_ROLES = frozenset(
    {
        Role.RECORD_ID,
        Role.NHS_NUMBER,
        Role.FORENAME,
        Role.MIDDLE_NAMES,
        Role.SURNAME,
        Role.PREVIOUS_SURNAMES,
        Role.DATE_OF_BIRTH,
        Role.SEX,
        Role.POSTCODE,
        Role.ADDRESS,
        Role.ADDRESS_HISTORY,
    }
)


def identifier_fields(
    record: Mapping[str, Any], roles: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields (and their roles) the linkage keys are made from; nothing else is kept."""
    kept = {name: role for name, role in roles.items() if role in _KEPT_ROLES and name in record}
    return {name: record[name] for name in kept}, kept


def _aad(record_token: str, record_version: int, input_event_id: str) -> bytes:
    return f"{record_token}\x00{record_version}\x00{input_event_id}".encode()


@dataclass(frozen=True, slots=True)
class VaultEntry:
    """One opened row: the identifier fields and what re-publishing them needs."""

    record_token: str
    record_version: int
    record_type: str
    source: str
    input_event_id: uuid.UUID
    delivery_id: str | None
    fields: dict[str, Any]


class Vault:
    """Seal into, open from, re-wrap and erase rows of the vault table.

    ``keks`` are every KEK loaded (by id); ``current`` wraps what is sealed now.
    """

    def __init__(self, keks: Mapping[str, KeyEncryptionKey], current: str) -> None:
        if current not in keks:
            raise ValueError(f"current KEK {current!r} is not loaded")
        self.keks = dict(keks)
        self.current = self.keks[current]

    def __repr__(self) -> str:
        return f"Vault(keks={sorted(self.keks)}, current={self.current.kek_id!r})"

    def row(
        self,
        *,
        record_token: str,
        record_version: int,
        record_type: str,
        source: str,
        input_event_id: uuid.UUID,
        delivery_id: str | None,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A sealed row to insert (see :meth:`keep`)."""
        aad = _aad(record_token, record_version, str(input_event_id))
        sealed = seal(self.current, json.dumps(fields, sort_keys=True).encode(), aad=aad)
        return {
            "record_token": record_token,
            "record_version": record_version,
            "record_type": record_type,
            "source": source,
            "input_event_id": str(input_event_id),
            "delivery_id": delivery_id,
            "kek_id": sealed.kek_id,
            "wrapped_key": sealed.wrapped_key,
            "ciphertext": sealed.ciphertext,
            "stored_at": datetime.now(UTC),
        }

    @staticmethod
    def keep(session: Session, rows: list[dict[str, Any]]) -> None:
        """Insert rows; a row already held (a redelivered input) is left as it is."""
        if not rows:
            return
        stmt = insert_for(session, vault).on_conflict_do_nothing(
            index_elements=["record_token", "record_version"]
        )
        session.execute(stmt, rows)

    def open(self, row: Mapping[str, Any]) -> VaultEntry:
        """The identifier fields of one stored row."""
        aad = _aad(row["record_token"], row["record_version"], row["input_event_id"])
        sealed = Sealed(row["kek_id"], bytes(row["wrapped_key"]), bytes(row["ciphertext"]))
        fields = json.loads(open_sealed(self.keks, sealed, aad=aad))
        return VaultEntry(
            record_token=row["record_token"],
            record_version=int(row["record_version"]),
            record_type=row["record_type"],
            source=row["source"],
            input_event_id=uuid.UUID(row["input_event_id"]),
            delivery_id=row["delivery_id"],
            fields=fields,
        )

    @staticmethod
    def rows(
        session: Session, *, spine: bool, after: str = "", limit: int = 500
    ) -> list[dict[str, Any]]:
        """Rows after token ``after`` (token order): every version of spine people
        (``spine``), else the latest version of every other record."""
        c = vault.c
        query = select(vault).where(c.record_token > after)
        if spine:
            query = query.where(c.record_type == "spine-person")
        else:
            latest = (
                select(c.record_token, func.max(c.record_version).label("v"))
                .where(c.record_type != "spine-person")
                .group_by(c.record_token)
                .subquery()
            )
            query = query.join(
                latest, (c.record_token == latest.c.record_token) & (c.record_version == latest.c.v)
            )
        # Whole people per page: a spine person's versions never straddle two pages.
        tokens = session.execute(
            select(query.subquery().c.record_token).distinct().order_by("record_token").limit(limit)
        ).scalars()
        wanted = list(tokens)
        if not wanted:
            return []
        page = query.where(c.record_token.in_(wanted)).order_by(c.record_token, c.record_version)
        return [dict(r._mapping) for r in session.execute(page)]

    def rewrap_all(self, session: Session, *, batch: int = 1000) -> int:
        """Re-wrap every data key not under the current KEK (KEK rotation): payloads are
        not re-encrypted. Returns how many rows changed."""
        c, changed = vault.c, 0
        while True:
            rows = session.execute(
                select(c.record_token, c.record_version, c.input_event_id, c.kek_id,
                       c.wrapped_key, c.ciphertext)
                .where(c.kek_id != self.current.kek_id)
                .limit(batch)
            ).all()  # fmt: skip
            if not rows:
                return changed
            for r in rows:
                aad = _aad(r.record_token, r.record_version, r.input_event_id)
                sealed = Sealed(r.kek_id, bytes(r.wrapped_key), bytes(r.ciphertext))
                new = rewrap(self.keks, sealed, self.current, aad=aad)
                session.execute(
                    update(vault)
                    .where(c.record_token == r.record_token, c.record_version == r.record_version)
                    .values(kek_id=new.kek_id, wrapped_key=new.wrapped_key)
                )
            changed += len(rows)
            session.commit()

    @staticmethod
    def erase(session: Session, record_token: str, *, reason: str) -> int:
        """Crypto-shred every version of one record (or spine person): the rows, and with
        them the wrapped data keys, are deleted, so no backup of the ciphertext opens either
        once the KEK rotates past them. Audited by a log line that names the record only by
        its token. Returns how many versions were erased."""
        result = session.execute(delete(vault).where(vault.c.record_token == record_token))
        erased = int(getattr(result, "rowcount", 0) or 0)
        log.info(
            "vault erase",
            extra={
                "audit": "vault.erase",
                "record_token": record_token,
                "versions": erased,
                "reason": reason,
            },
        )
        return erased

    def entries(self, rows: list[dict[str, Any]]) -> Iterator[VaultEntry]:
        for row in rows:
            yield self.open(row)
