"""Link's tables: processed-message markers, encoded spine and history, incoming keys,
results, review queue, audit trail, model versions.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "processed_messages",
        sa.Column("consumer_group", sa.String(255), primary_key=True),
        sa.Column("message_key", sa.String(512), primary_key=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("processed_at", tz, nullable=False),
    )
    op.create_table(
        "link_spine_records",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("record_version", sa.Integer, nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("linkage", sa.Text, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )
    op.create_table(
        "link_spine_history",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("record_version", sa.Integer, primary_key=True),
        sa.Column("linkage", sa.Text, nullable=False),
        sa.Column("recorded_at", tz, nullable=False),
    )
    op.create_table(
        "link_incoming_keys",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_version", sa.Integer, nullable=False),
        sa.Column("linkage", sa.Text, nullable=False),
    )
    op.create_table(
        "link_results",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("spine_token", sa.String(128), nullable=True),
        sa.Column("candidate_token", sa.String(128), nullable=True),
        sa.Column("alf", sa.String(128), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("detail_status", sa.Integer, nullable=False),
        sa.Column("match_probability", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )
    op.create_index("ix_link_results_spine_token", "link_results", ["spine_token"])
    op.create_index("ix_link_results_candidate_token", "link_results", ["candidate_token"])
    op.create_table(
        "link_review_queue",
        sa.Column("record_token", sa.String(128), primary_key=True),
        sa.Column("candidate_token", sa.String(128), nullable=False),
        sa.Column("match_probability", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("decided_at", tz, nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "link_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", tz, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("record_token", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "link_models",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "link_models",
        "link_audit",
        "link_review_queue",
        "link_results",
        "link_incoming_keys",
        "link_spine_history",
        "link_spine_records",
        "processed_messages",
    ):
        op.drop_table(name)
