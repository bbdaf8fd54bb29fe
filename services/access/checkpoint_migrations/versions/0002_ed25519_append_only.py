"""Checkpoints are signed with Ed25519 (a 128-hex-digit signature) and append-only.

Checkpoints signed before with the retired HMAC key do not verify under the public key: the
verifier reports them (a trail from before this revision starts over in a new database).
"""

import sqlalchemy as sa
from alembic import op

from services.access.storage.append_only import checkpoint_triggers

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("access_audit_checkpoints", schema=None) as batch_op:
        batch_op.alter_column(
            "signature", existing_type=sa.String(length=64), type_=sa.String(length=128)
        )
    for statement in checkpoint_triggers(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    t = "access_audit_checkpoints"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
        op.execute(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {t}_no_delete")
    with op.batch_alter_table(t, schema=None) as batch_op:
        batch_op.alter_column(
            "signature", existing_type=sa.String(length=128), type_=sa.String(length=64)
        )
