"""erasure receipts: what the index erasure guarantees (index_statement)

An erasure receipt counted the index vectors removed but did not say what removing them
guarantees, which depends on the index backend: the sealed ivf, faiss and exact files are
rewritten without the vectors under the rotated key, Milvus Lite rewrites its folder, and a
Milvus cluster deletes at once but removes the bytes only when its compaction, garbage
collection and message-queue retention get to them (docs/milvus.md). The receipt now keeps
that paragraph, as written at the erasure (``probity.index.factory.erasure_statement``), so
it stays what was true then even if the home later changes backend. Receipts written before
this revision keep NULL: what their erasure did was not recorded, and is not made up now.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN of a nullable column: no table rebuild on SQLite or PostgreSQL.
    op.add_column("erasure_receipts", sa.Column("index_statement", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("erasure_receipts") as batch:
        batch.drop_column("index_statement")
