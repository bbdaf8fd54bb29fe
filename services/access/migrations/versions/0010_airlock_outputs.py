"""The airlock: outputs asking to leave a workspace, their ACRO checks and reviews.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["access_projects.id"], name=f"fk_{table}_project_id_access_projects"
    )


def upgrade() -> None:
    op.create_table(
        "access_airlock_outputs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", _JSON, nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("preset", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("checks", _JSON, nullable=False),
        sa.Column("files", _JSON, nullable=False),
        sa.Column("exception", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        _project_fk("access_airlock_outputs"),
        sa.PrimaryKeyConstraint("id", name="pk_access_airlock_outputs"),
    )
    op.create_index(
        "ix_access_airlock_outputs_project", "access_airlock_outputs", ["project_id", "created_at"]
    )
    op.create_index("ix_access_airlock_outputs_state", "access_airlock_outputs", ["state"])
    op.create_table(
        "access_airlock_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("output_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("checker", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["access_airlock_outputs.id"],
            name="fk_access_airlock_reviews_output_id_access_airlock_outputs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_access_airlock_reviews"),
    )
    op.create_index("ix_access_airlock_reviews_output_id", "access_airlock_reviews", ["output_id"])


def downgrade() -> None:
    op.drop_table("access_airlock_reviews")
    op.drop_table("access_airlock_outputs")
