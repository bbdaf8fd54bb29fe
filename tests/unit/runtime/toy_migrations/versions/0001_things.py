"""A toy table, to prove the runtime drives Alembic."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("toy_things", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("toy_things")
