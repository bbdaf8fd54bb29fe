"""Analysis jobs run in a project's workspace (sandboxed).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["access_projects.id"], name=f"fk_{table}_project_id_access_projects"
    )


def upgrade() -> None:
    op.create_table(
        "access_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("script_sha256", sa.String(length=64), nullable=False),
        sa.Column("requirements", _JSON, nullable=False),
        sa.Column("extract_id", sa.String(length=36), nullable=True),
        sa.Column("inputs", _JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("outputs", _JSON, nullable=False),
        sa.Column("runner", sa.String(length=40), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _project_fk("access_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_access_jobs"),
    )
    op.create_index("ix_access_jobs_project", "access_jobs", ["project_id", "submitted_at"])
    op.create_index("ix_access_jobs_state", "access_jobs", ["state"])


def downgrade() -> None:
    op.drop_table("access_jobs")
