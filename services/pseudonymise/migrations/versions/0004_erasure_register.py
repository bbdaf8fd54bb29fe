"""The erasure register: the record tokens (and spine people's tokens) of objections and
erasures, so that a re-sent record is suppressed rather than vaulted and published again.
Kept for good: it is the proof that each request was honoured.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pseudonymise_erasures",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("receipt_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pseudonymise_erasures")
