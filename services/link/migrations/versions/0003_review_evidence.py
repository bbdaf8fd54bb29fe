"""The review queue keeps each queued pair's evidence (levels and weights, no identifier).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("link_review_queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("link_review_queue", schema=None) as batch_op:
        batch_op.drop_column("evidence")
