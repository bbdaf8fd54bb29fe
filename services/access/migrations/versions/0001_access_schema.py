"""The access schema: researchers, projects, approvals, research store, extracts, audit."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "access_audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_audit_head")),
    )
    op.create_table(
        "access_processed_messages",
        sa.Column("consumer_group", sa.String(length=255), nullable=False),
        sa.Column("message_key", sa.String(length=512), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "consumer_group", "message_key", name=op.f("pk_access_processed_messages")
        ),
    )
    # The chain's head exists from the start, so appends only ever lock and update it.
    op.bulk_insert(
        sa.table("access_audit_head", sa.column("id"), sa.column("seq"), sa.column("hash")),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )
    op.create_table(
        "access_audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=True),
        sa.Column("object_id", sa.String(length=200), nullable=True),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_audit_log")),
    )
    with op.batch_alter_table("access_audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_access_audit_log_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "access_link_decisions",
        sa.Column("record_token", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("alf", sa.String(length=128), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_token", name=op.f("pk_access_link_decisions")),
    )
    op.create_table(
        "access_link_results",
        sa.Column("record_token", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("supersedes_sequence", sa.Integer(), nullable=True),
        sa.Column("alf", sa.String(length=128), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_token", "sequence", name=op.f("pk_access_link_results")),
    )
    op.create_table(
        "access_projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column(
            "requested",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column(
            "quasi_identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("k_mode", sa.String(length=20), nullable=False),
        sa.Column("pseudonym_key_version", sa.Integer(), nullable=False),
        sa.Column("access_until", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_projects")),
    )
    with op.batch_alter_table("access_projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_projects_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_projects_state"), ["state"], unique=False)

    op.create_table(
        "access_research_records",
        sa.Column("record_token", sa.String(length=128), nullable=False),
        sa.Column("record_type", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("week_of_birth", sa.Date(), nullable=True),
        sa.Column("sex", sa.Integer(), nullable=True),
        sa.Column("lsoa", sa.String(length=16), nullable=True),
        sa.Column("local_authority", sa.String(length=16), nullable=True),
        sa.Column("case_token", sa.String(length=128), nullable=True),
        sa.Column(
            "related_tokens",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("event_date", sa.Date(), nullable=True),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_token", name=op.f("pk_access_research_records")),
    )
    with op.batch_alter_table("access_research_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_research_records_case_token"), ["case_token"], unique=False
        )
        batch_op.create_index(
            "ix_access_research_records_type_date", ["record_type", "event_date"], unique=False
        )

    op.create_table(
        "access_researchers",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("accredited_until", sa.Date(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_access_researchers")),
    )
    op.create_table(
        "access_extracts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("directory", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_extracts_project_id_access_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_extracts")),
    )
    with op.batch_alter_table("access_extracts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_extracts_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            "ix_access_extracts_requester",
            ["project_id", "requested_by", "requested_at"],
            unique=False,
        )

    op.create_table(
        "access_outputs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("preset", sa.String(length=40), nullable=False),
        sa.Column(
            "submitted",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "checked",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_outputs_project_id_access_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_outputs")),
    )
    with op.batch_alter_table("access_outputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_outputs_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_access_outputs_state"), ["state"], unique=False)

    op.create_table(
        "access_project_approvals",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column(
            "datasets",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column(
            "members",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("access_until", sa.Date(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_project_approvals_project_id_access_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_access_project_approvals")),
    )
    op.create_table(
        "access_project_members",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["access_projects.id"],
            name=op.f("fk_access_project_members_project_id_access_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "subject", name=op.f("pk_access_project_members")),
    )
    with op.batch_alter_table("access_project_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_access_project_members_subject"), ["subject"], unique=False
        )

    op.create_table(
        "access_output_reviews",
        sa.Column("output_id", sa.String(length=36), nullable=False),
        sa.Column("checker", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["access_outputs.id"],
            name=op.f("fk_access_output_reviews_output_id_access_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("output_id", "checker", name=op.f("pk_access_output_reviews")),
    )


def downgrade() -> None:
    op.drop_table("access_processed_messages")
    op.drop_table("access_output_reviews")
    with op.batch_alter_table("access_project_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_project_members_subject"))

    op.drop_table("access_project_members")
    op.drop_table("access_project_approvals")
    with op.batch_alter_table("access_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_outputs_state"))
        batch_op.drop_index(batch_op.f("ix_access_outputs_project_id"))

    op.drop_table("access_outputs")
    with op.batch_alter_table("access_extracts", schema=None) as batch_op:
        batch_op.drop_index("ix_access_extracts_requester")
        batch_op.drop_index(batch_op.f("ix_access_extracts_project_id"))

    op.drop_table("access_extracts")
    op.drop_table("access_researchers")
    with op.batch_alter_table("access_research_records", schema=None) as batch_op:
        batch_op.drop_index("ix_access_research_records_type_date")
        batch_op.drop_index(batch_op.f("ix_access_research_records_case_token"))

    op.drop_table("access_research_records")
    with op.batch_alter_table("access_projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_projects_state"))
        batch_op.drop_index(batch_op.f("ix_access_projects_owner"))

    op.drop_table("access_projects")
    op.drop_table("access_link_results")
    op.drop_table("access_link_decisions")
    with op.batch_alter_table("access_audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_audit_log_project_id"))
        batch_op.drop_index(batch_op.f("ix_access_audit_log_action"))

    op.drop_table("access_audit_log")
    op.drop_table("access_audit_head")
