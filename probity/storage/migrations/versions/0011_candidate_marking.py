"""candidate marking: within threshold, enrolments fused, expected strangers

Searches now rank people by one fused score and, by default, mark no row (investigation
mode). Each stored candidate keeps whether it was within the search's threshold (null when
nothing was marked), how many of the subject's enrolments were fused, and how many strangers a
gallery of that size is expected to hold that close. Older rows keep null / 1: they came from
searches that dropped every row beyond a 1:1 threshold.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN works on SQLite and PostgreSQL alike (no table rebuild).
    op.add_column("search_candidates", sa.Column("within_threshold", sa.Boolean(), nullable=True))
    op.add_column(
        "search_candidates",
        sa.Column("fused", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    op.add_column("search_candidates", sa.Column("expected_strangers", sa.Float(), nullable=True))


def downgrade() -> None:
    for column in ("expected_strangers", "fused", "within_threshold"):
        with op.batch_alter_table("search_candidates") as batch:
            batch.drop_column(column)
