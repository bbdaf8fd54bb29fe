"""Data controllers' sign-offs of projects, and the panel's decisions with their comments.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "access_project_sign_offs",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("controller", sa.String(length=60), nullable=False),
        sa.Column("signed_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_project_sign_offs_project_id_access_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "controller", name=op.f("pk_access_project_sign_offs")
        ),
    )
    op.create_table(
        "access_project_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_project_decisions_project_id_access_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_project_decisions")),
    )
    with op.batch_alter_table("access_project_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_project_decisions_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("access_project_decisions")
    op.drop_table("access_project_sign_offs")
