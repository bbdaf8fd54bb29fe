"""Objections, erasure requests and opt-outs with their receipts."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_objections",
        sa.Column("receipt_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("record_type", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_ingest_objections"),
        sa.UniqueConstraint("source", "request_id", name="uq_ingest_objections_request"),
    )
    op.create_index(
        "ix_ingest_objections_listing", "ingest_objections", ["received_at", "receipt_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_objections_listing", table_name="ingest_objections")
    op.drop_table("ingest_objections")
