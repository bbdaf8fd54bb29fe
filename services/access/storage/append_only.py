"""Triggers that make the audit tables append-only, and the grants for the service's role.

The triggers refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of audit rows and
checkpoints, and let the head row only move forward one row at a time, whoever asks: the
service's own role included, and any mistake or injected statement through it. A table's
owner can still drop a trigger, so on PostgreSQL the service should not own its tables: an
owner role runs the migrations, and ``audit_grants`` gives the service's role what it needs
and no more (on the audit tables: SELECT and INSERT, and UPDATE of the head). The audit
chain and the signed checkpoints kept outside the database catch what an owner does anyway.
"""

from __future__ import annotations

import re

__all__ = [
    "APPEND_ONLY_TABLES",
    "HEAD_TABLE",
    "audit_grants",
    "checkpoint_triggers",
    "log_triggers",
]

APPEND_ONLY_TABLES = ("access_audit_log", "access_audit_checkpoints")
HEAD_TABLE = "access_audit_head"
_REFUSED = "the audit trail is append-only"
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _pg_functions() -> list[str]:
    refuse = (
        f"RAISE EXCEPTION '{_REFUSED}: % on % refused', TG_OP, TG_TABLE_NAME "
        "USING ERRCODE = 'insufficient_privilege';"
    )
    return [
        "CREATE OR REPLACE FUNCTION access_audit_append_only() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN {refuse} END $$",
        # The head may move forward one row at a time, and do nothing else. (Two functions:
        # PL/pgSQL does not short-circuit, and the log's rows have no ``id``.)
        "CREATE OR REPLACE FUNCTION access_audit_head_forward_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' THEN "
        "IF NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 THEN RETURN NEW; END IF; "
        "END IF; "
        f"{refuse} END $$",
    ]


def _pg_triggers(table: str, function: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: {op} on {table} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]


def log_triggers(dialect: str) -> list[str]:
    """DDL for the log and the head (access migration 0004)."""
    if dialect == "postgresql":
        return [
            *_pg_functions(),
            *_pg_triggers("access_audit_log", "access_audit_append_only"),
            *_pg_triggers(HEAD_TABLE, "access_audit_head_forward_only"),
        ]
    return [
        *_sqlite_triggers("access_audit_log"),
        f"CREATE TRIGGER {HEAD_TABLE}_forward_only BEFORE UPDATE ON {HEAD_TABLE} "
        "WHEN NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: the head only moves forward'); END",
        f"CREATE TRIGGER {HEAD_TABLE}_no_delete BEFORE DELETE ON {HEAD_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: DELETE on {HEAD_TABLE} refused'); END",
    ]


def checkpoint_triggers(dialect: str) -> list[str]:
    """DDL for the checkpoint store (checkpoint migration 0002; it may be another database)."""
    if dialect == "postgresql":
        return [
            *_pg_functions(),
            *_pg_triggers("access_audit_checkpoints", "access_audit_append_only"),
        ]
    return _sqlite_triggers("access_audit_checkpoints")


def audit_grants(
    role: str,
    *,
    audit: tuple[str, ...],
    head: bool,
    other_tables: tuple[str, ...] = (),
    read_only: tuple[str, ...] = (),
) -> list[str]:
    """PostgreSQL statements an owner runs so that ``role`` (the service's login) may only
    append to the ``audit`` tables (and move the head forward, when ``head``), use
    ``other_tables`` as the service needs and read ``read_only`` (the migration versions)."""
    if not _ROLE.fullmatch(role):
        raise ValueError(
            "a role name is letters, digits and underscores, not starting with a digit"
        )
    who = f'"{role}"'
    tables = (*audit, *((HEAD_TABLE,) if head else ()), *other_tables, *read_only)
    everything = ", ".join(tables)
    statements = [
        f"REVOKE ALL ON {everything} FROM PUBLIC",
        f"REVOKE ALL ON {everything} FROM {who}",
        f"GRANT SELECT, INSERT ON {', '.join(audit)} TO {who}",
    ]
    if head:
        statements.append(f"GRANT SELECT, UPDATE ON {HEAD_TABLE} TO {who}")
    if other_tables:
        statements.append(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(other_tables)} TO {who}"
        )
    if read_only:
        statements.append(f"GRANT SELECT ON {', '.join(read_only)} TO {who}")
    return statements
