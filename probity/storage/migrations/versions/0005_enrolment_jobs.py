"""enrolment jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrolment_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("gallery_id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("manifest", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("refused_count", sa.Integer(), nullable=False),
        sa.Column("reports", probity.storage.types.JSONText(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", probity.storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", probity.storage.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", probity.storage.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", probity.storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["gallery_id"],
            ["galleries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrolment_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrolment_jobs_finished_at"), ["finished_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrolment_jobs_gallery_id"), ["gallery_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrolment_jobs_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("enrolment_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_jobs_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_enrolment_jobs_gallery_id"))
        batch_op.drop_index(batch_op.f("ix_enrolment_jobs_finished_at"))

    op.drop_table("enrolment_jobs")
