"""password reset codes on users; spent public form tokens

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_reset_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("password_reset_expires", UTC(), nullable=True))
    op.create_table(
        "spent_form_tokens",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_spent_form_tokens_expires_at", "spent_form_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_spent_form_tokens_expires_at", table_name="spent_form_tokens")
    op.drop_table("spent_form_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_reset_expires")
        batch.drop_column("password_reset_hash")
