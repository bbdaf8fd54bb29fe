"""Objections, erasure requests and opt-outs: each request's outcome, the exclusions it left
(record tokens and ALFs), which records each extract holds, and an extract's rebuild flag.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "access_objections",
        sa.Column("receipt_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("record_type", sa.String(40), nullable=False),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("record_token", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("refusal_reason", sa.String(40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_access_objections"),
    )
    op.create_table(
        "access_exclusions",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("receipt_id", sa.String(36), nullable=True),
        sa.Column("excluded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "value", "kind", name="pk_access_exclusions"),
    )
    op.create_table(
        "access_extract_holdings",
        sa.Column("extract_id", sa.String(36), nullable=False),
        sa.Column("record_token", sa.String(128), nullable=False),
        sa.Column("alf", sa.String(128), nullable=True),
        sa.ForeignKeyConstraint(
            ["extract_id"],
            ["access_extracts.id"],
            name="fk_access_extract_holdings_extract_id_access_extracts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("extract_id", "record_token", name="pk_access_extract_holdings"),
    )
    op.create_index(
        "ix_access_extract_holdings_record_token", "access_extract_holdings", ["record_token"]
    )
    op.create_index("ix_access_extract_holdings_alf", "access_extract_holdings", ["alf"])
    with op.batch_alter_table("access_extracts") as batch:
        batch.add_column(sa.Column("rebuild_reason", sa.String(200), nullable=True))
        batch.add_column(sa.Column("rebuild_flagged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_extracts") as batch:
        batch.drop_column("rebuild_flagged_at")
        batch.drop_column("rebuild_reason")
    op.drop_index("ix_access_extract_holdings_alf", table_name="access_extract_holdings")
    op.drop_index("ix_access_extract_holdings_record_token", table_name="access_extract_holdings")
    op.drop_table("access_extract_holdings")
    op.drop_table("access_exclusions")
    op.drop_table("access_objections")
