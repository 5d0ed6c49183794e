"""suppression list version: one row, bumped with every change to the list

A search and an enrolment compared the face with the whole suppression list, decrypted on
every call (issue "Scale": 373 ms per call at 10,000 objectors). The services now keep the
decrypted list in memory and read this row first: the list is decrypted again only when the
version changed (services/suppression.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime


def upgrade() -> None:
    version = op.create_table(
        "suppression_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("changed_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The list as it stands gets version 0; no process holds a copy of it yet.
    op.bulk_insert(
        version, [{"id": 1, "version": 0, "token": uuid.uuid4().hex, "changed_at": None}]
    )


def downgrade() -> None:
    op.drop_table("suppression_version")
