"""A job's owner (the replica that runs it) and that owner's lease, renewed by a heartbeat:
a restarted replica fails only the jobs whose owner's lease has expired.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    with op.batch_alter_table("access_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
