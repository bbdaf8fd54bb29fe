"""Refusals are counted per source and window (``access_refusal_windows``), not one entry each."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "access_refusal_windows",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("in_full", sa.Integer(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source", "window_start", name=op.f("pk_access_refusal_windows")),
    )
    with op.batch_alter_table("access_refusal_windows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_refusal_windows_window_start"), ["window_start"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("access_refusal_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_refusal_windows_window_start"))
    op.drop_table("access_refusal_windows")
