"""Retention of a closed project's workspace and the public register's decision.

The approval may set the period a closed project's workspace is kept (the data-sharing
agreement's, overriding the setting) and records whether the project is published in the
public register, or withheld with a reason. A project records when its workspace was deleted,
so the retention job runs once per project.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    with op.batch_alter_table("access_project_approvals") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
        # NULL: approved before the register existed; such a project is not published.
        batch.add_column(sa.Column("register_publish", sa.Boolean(), nullable=True))
        batch.add_column(
            sa.Column("register_withheld_reason", sa.Text(), nullable=False, server_default="")
        )
    with op.batch_alter_table("access_projects") as batch:
        batch.add_column(
            sa.Column("workspace_deleted_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("access_projects") as batch:
        batch.drop_column("workspace_deleted_at")
    with op.batch_alter_table("access_project_approvals") as batch:
        batch.drop_column("register_withheld_reason")
        batch.drop_column("register_publish")
        batch.drop_column("retention_days")
