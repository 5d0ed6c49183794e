"""several face models: objection templates per model

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One objection now has a template per installed model, all sharing objection_id.
    with op.batch_alter_table("suppression_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("objection_id", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_suppression_templates_objection_id"), ["objection_id"], unique=False
        )
    op.execute("UPDATE suppression_templates SET objection_id = id WHERE objection_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("suppression_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppression_templates_objection_id"))
        batch_op.drop_column("objection_id")
