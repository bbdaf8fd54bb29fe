"""Dead-letter markers keep their error type, so the status page's counts by reason survive
restarts and are the consumer group's, not one replica's.

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_processed_messages") as batch:
        batch.add_column(sa.Column("reason", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_processed_messages") as batch:
        batch.drop_column("reason")
