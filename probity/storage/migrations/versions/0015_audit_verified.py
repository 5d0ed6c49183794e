"""audit verification checkpoint: where the last verification of the chain ended

**audit_verified**: one row (id 1). ``seq`` / ``hash`` / ``verified_at`` / ``verified_by``
name the end of the last *successful* verification: the chain up to event ``seq`` was
re-hashed (then or by an earlier verification) and event ``seq`` had hash ``hash``. An
incremental ``audit verify`` starts there and re-hashes only the events after it; a failed
verification never moves it. ``witness_seq`` is the newest witness entry seen by that
verification and ``witness_read`` how far (bytes, lines) it read each witness file, so the
next one reads only the lines appended since.

The ``last_*`` columns describe the most recent verification, passed or failed (when, by
whom, which mode, from which seq, how many events it re-hashed, its first problem): the
``/audit`` page shows them instead of verifying on every visit.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "audit_verified",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("verified_at", UTC(), nullable=True),
        sa.Column("verified_by", sa.String(length=200), nullable=True),
        sa.Column("witness_seq", sa.Integer(), nullable=True),
        sa.Column("witness_read", probity.storage.types.JSONText(), nullable=False),
        sa.Column("last_at", UTC(), nullable=False),
        sa.Column("last_by", sa.String(length=200), nullable=False),
        sa.Column("last_ok", sa.Boolean(), nullable=False),
        sa.Column("last_mode", sa.String(length=20), nullable=False),
        sa.Column("last_from_seq", sa.Integer(), nullable=False),
        sa.Column("last_events_checked", sa.Integer(), nullable=False),
        sa.Column("last_first_broken_seq", sa.Integer(), nullable=True),
        sa.Column("last_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("audit_verified")
