"""audit verification checkpoint: where the last verification of the chain ended

(Filled in by the incremental ``audit verify`` work of issue "Scale"; until then this
revision changes nothing, so the chain 0014 -> 0015 -> 0016 exists from the start.)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
