"""The spine log every link replica follows, partition claims, and decision positions.

``link_spine_log`` holds every spine version (and model) in one dense order; ``link_log_head``
hands out its positions. ``link_partitions`` records which replica owns an input partition
(an epoch every writer checks) and how far its records are decided. Results gain the
position they were decided at; incoming keys the partition they arrive on.

Existing spine people become the log's first entries (in record-token order), existing
incoming keys get the partition Kafka's default partitioner gives their token on the
registry's linkage-keys topic, and existing results are marked decided at position 0, so the
first worker to own them re-checks each once.

Revision ID: 0004
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from contracts.topics import PSEUDONYMISE_LINKAGE_KEYS
from services.runtime.bus import partition_for_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "link_spine_log",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_token", sa.String(128), nullable=True),
        sa.Column("record_version", sa.Integer, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("recorded_at", tz, nullable=False),
    )
    op.create_table(
        "link_log_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "link_partitions",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("spine_position", sa.BigInteger, nullable=False),
        sa.Column("model_position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )
    with op.batch_alter_table("link_spine_records") as t:
        t.add_column(sa.Column("position", sa.BigInteger, nullable=True))
    with op.batch_alter_table("link_incoming_keys") as t:
        t.add_column(sa.Column("partition", sa.Integer, nullable=True))
        t.create_index("ix_link_incoming_keys_partition", ["partition"])
    with op.batch_alter_table("link_results") as t:
        t.add_column(sa.Column("decided_at", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("link_models") as t:
        t.add_column(sa.Column("position", sa.BigInteger, nullable=True))

    conn = op.get_bind()
    now = datetime.now(UTC)
    spine = conn.execute(
        sa.text(
            "SELECT record_token, record_version, linkage FROM link_spine_records "
            "ORDER BY record_token"
        )
    ).all()
    if spine:
        conn.execute(
            sa.text(
                "INSERT INTO link_spine_log (position, kind, record_token, record_version, "
                "payload, recorded_at) VALUES (:p, 'person', :t, :v, :payload, :at)"
            ),
            [
                {"p": i, "t": r[0], "v": r[1], "payload": r[2], "at": now}
                for i, r in enumerate(spine, start=1)
            ],
        )
        conn.execute(
            sa.text("UPDATE link_spine_records SET position = :p WHERE record_token = :t"),
            [{"p": i, "t": r[0]} for i, r in enumerate(spine, start=1)],
        )
    conn.execute(
        sa.text("INSERT INTO link_log_head (id, position) VALUES (1, :n)"), {"n": len(spine)}
    )
    tokens = conn.execute(sa.text("SELECT record_token FROM link_incoming_keys")).scalars().all()
    if tokens:
        n = PSEUDONYMISE_LINKAGE_KEYS.partitions
        conn.execute(
            sa.text("UPDATE link_incoming_keys SET partition = :p WHERE record_token = :t"),
            [{"p": partition_for_key(t.encode(), n), "t": t} for t in tokens],
        )


def downgrade() -> None:
    with op.batch_alter_table("link_models") as t:
        t.drop_column("position")
    with op.batch_alter_table("link_results") as t:
        t.drop_column("decided_at")
    with op.batch_alter_table("link_incoming_keys") as t:
        t.drop_index("ix_link_incoming_keys_partition")
        t.drop_column("partition")
    with op.batch_alter_table("link_spine_records") as t:
        t.drop_column("position")
    for name in ("link_partitions", "link_log_head", "link_spine_log"):
        op.drop_table(name)
