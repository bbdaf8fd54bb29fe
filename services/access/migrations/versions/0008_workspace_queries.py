"""A workspace's SQL queries, run or refused.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["access_projects.id"], name=f"fk_{table}_project_id_access_projects"
    )


def upgrade() -> None:
    op.create_table(
        "access_workspace_queries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("sql_sha256", sa.String(length=64), nullable=False),
        sa.Column("extract_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", _JSON, nullable=False),
        sa.Column("result_sha256", sa.String(length=64), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _project_fk("access_workspace_queries"),
        sa.PrimaryKeyConstraint("id", name="pk_access_workspace_queries"),
    )
    op.create_index(
        "ix_access_workspace_queries_project",
        "access_workspace_queries",
        ["project_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("access_workspace_queries")
