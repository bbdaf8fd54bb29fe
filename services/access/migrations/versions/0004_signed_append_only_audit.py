"""The audit log is signed row by row (Ed25519) and append-only.

Adds ``signature`` to ``access_audit_log`` (null only for rows written before, which the
verifier of this version reports as unsigned: such a trail was chained with the retired HMAC
key) and triggers that refuse UPDATE and DELETE of log rows and let the head only move
forward one row at a time (services/access/storage/append_only.py).
"""

import sqlalchemy as sa
from alembic import op

from services.access.storage.append_only import log_triggers

revision = "0004"
down_revision = "0003"

_TRIGGERS = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS {t}_append_only ON {t}",
        "DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS {t}_no_update",
        "DROP TRIGGER IF EXISTS {t}_no_delete",
        "DROP TRIGGER IF EXISTS {t}_forward_only",
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("access_audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.String(length=128), nullable=True))
    for statement in log_triggers(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("access_audit_log", "access_audit_head"):
        for statement in _TRIGGERS.get(dialect, _TRIGGERS["sqlite"]):
            op.execute(statement.format(t=table))
    with op.batch_alter_table("access_audit_log", schema=None) as batch_op:
        batch_op.drop_column("signature")
