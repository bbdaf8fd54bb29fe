"""Approvals pin the quasi-identifiers their extracts are k-anonymous on.

Null for approvals recorded before: their extracts use the project's set, which is never
less than the catalogue's (services/access/domain/catalogue.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "quasi_identifiers",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("access_project_approvals", schema=None) as batch_op:
        batch_op.drop_column("quasi_identifiers")
