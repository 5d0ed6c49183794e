"""subject keys: a covering index, so a search reads a wrapped key in one page

A search re-scores its candidates from their sealed templates, and opens each candidate
subject's data key to do it: 40 wrapped keys a search at the default top 10. The key is
found through the primary key's index (``subject_id``) and then read from the table's own
B-tree: two random page reads a key. At 10M faces the SQLite database (25.7 GB) is larger
than this machine's page cache, so each of those reads is a read from disk.

``ix_subject_keys_covering`` holds (subject_id, wrapped_key): SQLite and PostgreSQL then
answer ``wrapped_keys`` from the index alone (SQLite "USING COVERING INDEX", PostgreSQL an
index-only scan once the table is vacuumed), one page a key, and the search's hot pages
leave the table out. The cost: about 110 bytes a subject of disk (1.1 GB at 10M), and one
more index entry written per enrolment and per key re-wrapped by a rotation.

Creating it reads the whole table once: minutes at 10M (bench/README.md gives the figure).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_subject_keys_covering", "subject_keys", ["subject_id", "wrapped_key"])


def downgrade() -> None:
    op.drop_index("ix_subject_keys_covering", table_name="subject_keys")
