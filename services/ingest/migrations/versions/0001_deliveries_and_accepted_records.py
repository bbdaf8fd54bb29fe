"""Deliveries with their receipts and errors, and the index of accepted record versions."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("errors_omitted", sa.BigInteger(), nullable=False),
        sa.Column("failure", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_deliveries"),
        sa.UniqueConstraint("source", "idempotency_key", name="uq_ingest_deliveries_idempotency"),
    )
    op.create_index(
        "ix_ingest_deliveries_content",
        "ingest_deliveries",
        ["source", "record_type", "content_sha256"],
    )
    op.create_index(
        "ix_ingest_deliveries_listing", "ingest_deliveries", ["source", "created_at", "id"]
    )
    op.create_table(
        "ingest_delivery_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["ingest_deliveries.id"],
            name="fk_ingest_delivery_errors_delivery_id_ingest_deliveries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_delivery_errors"),
    )
    op.create_index(
        "ix_ingest_delivery_errors_delivery_id", "ingest_delivery_errors", ["delivery_id"]
    )
    op.create_table(
        "ingest_accepted_records",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("record_version", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "source",
            "record_type",
            "record_id",
            "record_version",
            name="pk_ingest_accepted_records",
        ),
    )


def downgrade() -> None:
    op.drop_table("ingest_accepted_records")
    op.drop_index("ix_ingest_delivery_errors_delivery_id", table_name="ingest_delivery_errors")
    op.drop_table("ingest_delivery_errors")
    op.drop_index("ix_ingest_deliveries_listing", table_name="ingest_deliveries")
    op.drop_index("ix_ingest_deliveries_content", table_name="ingest_deliveries")
    op.drop_table("ingest_deliveries")
