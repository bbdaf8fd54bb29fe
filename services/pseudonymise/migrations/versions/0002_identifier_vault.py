"""The identifier vault (sealed identifiers for re-encoding) and re-encode progress.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pseudonymise_vault",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("record_version", sa.Integer, primary_key=True),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("input_event_id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=True),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pseudonymise_reencode_progress",
        sa.Column("key_version", sa.Integer, primary_key=True),
        sa.Column("shard", sa.String(16), primary_key=True),
        sa.Column("phase", sa.String(16), primary_key=True),
        sa.Column("last_token", sa.String(128), nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pseudonymise_reencode_progress")
    op.drop_table("pseudonymise_vault")
