"""The spine log by person: an erasure rewrites a spine person's entries (their keyed
encodings go), found by record token rather than by reading the whole log.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_link_spine_log_record_token", "link_spine_log", ["record_token"])


def downgrade() -> None:
    op.drop_index("ix_link_spine_log_record_token", table_name="link_spine_log")
