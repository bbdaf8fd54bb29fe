"""Approvals pin how precisely their extracts give dates (week, month, quarter, year).

Null for approvals recorded before: read as month (services/access/domain/generalisation.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_precision", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.drop_column("date_precision")
