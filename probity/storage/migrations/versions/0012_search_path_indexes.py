"""indexes on the search path: enrolments by template, searches by who and when

A search reads the enrolments behind its index hits by template id and counts the searcher's
and their organisation's recent searches for the rate limits. Each was a scan that grows with
the data (issue "Scale": the enrolment read alone cost 343 ms at 1M faces).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_enrolments_template_id", "enrolments", ["template_id"])
    op.create_index("ix_searches_user_at", "searches", ["user_id", "at"])
    op.create_index("ix_searches_organisation_at", "searches", ["organisation_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_searches_organisation_at", table_name="searches")
    op.drop_index("ix_searches_user_at", table_name="searches")
    op.drop_index("ix_enrolments_template_id", table_name="enrolments")
