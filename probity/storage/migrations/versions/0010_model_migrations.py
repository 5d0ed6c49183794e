"""model migrations: their state and items, suppression holds

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime
JSON = probity.storage.types.JSONText


def upgrade() -> None:
    op.create_table(
        "model_migrations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("gallery_id", sa.String(length=32), nullable=False),
        sa.Column("from_model_key", sa.String(length=200), nullable=False),
        sa.Column("to_model_name", sa.String(length=100), nullable=False),
        sa.Column("to_model_version", sa.String(length=100), nullable=False),
        sa.Column("to_model_dimension", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", JSON(), nullable=True),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model_migrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_migrations_gallery_id"), ["gallery_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_model_migrations_status"), ["status"], unique=False)

    op.create_table(
        "model_migration_items",
        sa.Column("migration_id", sa.String(length=32), nullable=False),
        sa.Column("enrolment_id", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=True),
        sa.Column("box", JSON(), nullable=True),
        sa.Column("quality", JSON(), nullable=True),
        sa.Column("reasons", JSON(), nullable=True),
        sa.ForeignKeyConstraint(["migration_id"], ["model_migrations.id"]),
        sa.PrimaryKeyConstraint("migration_id", "enrolment_id"),
    )
    with op.batch_alter_table("model_migration_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_migration_items_enrolment_id"), ["enrolment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_model_migration_items_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "suppression_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("objection_id", sa.String(length=32), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("migration_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suppression_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_suppression_holds_subject_id"), ["subject_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_suppression_holds_objection_id"), ["objection_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("suppression_holds")
    op.drop_table("model_migration_items")
    op.drop_table("model_migrations")
