"""Retire the declared-table outputs: the workspace airlock (0010, ACRO) is the one review
workflow, so the tables of typed-in counts and their reviews go.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.drop_table("access_output_reviews")
    with op.batch_alter_table("access_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_outputs_state"))
        batch_op.drop_index(batch_op.f("ix_access_outputs_project_id"))
    op.drop_table("access_outputs")


def downgrade() -> None:
    # The tables as 0001 made them, empty: what was declared in them is not brought back.
    op.create_table(
        "access_outputs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("preset", sa.String(length=40), nullable=False),
        sa.Column("submitted", _JSON, nullable=False),
        sa.Column("checked", _JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_outputs_project_id_access_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_outputs")),
    )
    with op.batch_alter_table("access_outputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_outputs_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_access_outputs_state"), ["state"], unique=False)
    op.create_table(
        "access_output_reviews",
        sa.Column("output_id", sa.String(length=36), nullable=False),
        sa.Column("checker", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["access_outputs.id"],
            name=op.f("fk_access_output_reviews_output_id_access_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", "checker", name=op.f("pk_access_output_reviews")),
    )
