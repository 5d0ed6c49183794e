"""rights requests, erasure receipts, suppression list, jurisdiction rules

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime
JSON = probity.storage.types.JSONText


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("receipt", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.String(length=32), nullable=True),
        sa.Column("filed_at", UTC(), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("due_at", UTC(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("identifiers", JSON(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("photo_blob", sa.String(length=64), nullable=True),
        sa.Column("photo_key", sa.LargeBinary(), nullable=True),
        sa.Column("closed_at", UTC(), nullable=True),
        sa.Column("handled_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("result", JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt"),
    )
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rights_requests_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_rights_requests_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_rights_requests_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_rights_requests_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "erasure_receipts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("at", UTC(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("gallery", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("subject_reference", sa.String(length=200), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("enrolments", sa.Integer(), nullable=False),
        sa.Column("templates", sa.Integer(), nullable=False),
        sa.Column("blobs", sa.Integer(), nullable=False),
        sa.Column("index_vectors", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erasure_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasure_receipts_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_erasure_receipts_subject_id"), ["subject_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_erasure_receipts_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "suppression_templates",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("organisation_id", sa.String(length=32), nullable=True),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suppression_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_suppression_templates_request_id"), ["request_id"], unique=False
        )

    state = op.create_table(
        "keyring_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("rotated_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # Epoch 0: data keys wrapped directly by the master key, as before this migration.
    op.bulk_insert(state, [{"id": 1, "epoch": 0, "rotated_at": None}])

    op.create_table(
        "jurisdiction_rules",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("scope", "code"),
    )


def downgrade() -> None:
    op.drop_table("keyring_state")
    op.drop_table("jurisdiction_rules")
    with op.batch_alter_table("suppression_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppression_templates_request_id"))
    op.drop_table("suppression_templates")
    with op.batch_alter_table("erasure_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_receipts_request_id"))
        batch_op.drop_index(batch_op.f("ix_erasure_receipts_subject_id"))
        batch_op.drop_index(batch_op.f("ix_erasure_receipts_at"))
    op.drop_table("erasure_receipts")
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_requests_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_rights_requests_due_at"))
        batch_op.drop_index(batch_op.f("ix_rights_requests_status"))
        batch_op.drop_index(batch_op.f("ix_rights_requests_kind"))
    op.drop_table("rights_requests")
