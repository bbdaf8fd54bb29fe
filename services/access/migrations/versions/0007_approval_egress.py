"""Approvals name the egress they permit beyond the airlock (none by default).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("egress", _JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.drop_column("egress")
