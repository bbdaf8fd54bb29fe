"""Incoming keys say which key version encoded them, so a rotation's re-encode replaces them
(and a stale encoding arriving late does not).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("link_incoming_keys") as batch:
        batch.add_column(sa.Column("key_version", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("link_incoming_keys") as batch:
        batch.drop_column("key_version")
