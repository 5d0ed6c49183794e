"""a tree of key-encryption keys, so that an erasure's rotation is bounded

Adds ``kek_buckets`` (one row per bucket KEK, sealed under the root KEK of an epoch) and an
expression index on the first three bytes of every wrapped-key column (format byte and
bucket, see storage/keyring.py ``WRAPPED_V3``), so that a rotation finds one bucket's rows
by index.

The migration cannot move existing keys into the tree: it has no key material (Alembic runs
without the master key). The buckets are created and every key of format 1 or 2 is
re-wrapped into its bucket by ``Vault.enter_tree`` at the next ``probity init`` (one pass
over every stored key, about the cost of one erasure before this change; no epoch change,
nothing destroyed), or else by the first rotation. Until then old keys open as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_subject_keys_kek_bucket", "subject_keys", "wrapped_key"),
    ("ix_cases_kek_bucket", "cases", "wrapped_probe_key"),
    ("ix_rights_requests_kek_bucket", "rights_requests", "photo_key"),
    ("ix_suppression_templates_kek_bucket", "suppression_templates", "wrapped_key"),
)


def upgrade() -> None:
    op.create_table(
        "kek_buckets",
        sa.Column("bucket", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("sealed_kek", sa.LargeBinary(), nullable=False),
    )
    for name, table, column in _INDEXES:
        op.create_index(name, table, [sa.text(f"substr({column}, 1, 3)")])
    # Buckets of data keys dropped outside an erasure (a closed rights request's photo key):
    # the next rotation gives them fresh KEKs too (storage/vault.py ``forget_key``).
    op.create_table(
        "kek_stale_buckets",
        sa.Column("bucket", sa.Integer(), primary_key=True, autoincrement=False),
    )


def downgrade() -> None:
    op.drop_table("kek_stale_buckets")
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("kek_buckets")
