"""template change log (index catch-up) and erasure work journal

**template_changes**: every insert into or delete from ``templates`` is written, by a
trigger in the same transaction, as one row (seq, gallery, model, template id, op). Each
vector index records the last seq it has applied and catches up from here when opened and
before it answers a search (services/indexes.py), so a crash between a database commit and
an index save can no longer leave people unsearchable. A trigger rather than application
code: every path that changes templates (enrolment, erasure, purge, model migration, a
future one) is covered without having to remember to log.

The seq is taken from the one-row ``template_log_head`` inside the trigger (``UPDATE ...
seq = seq + 1``), so writers of templates serialise on that row until they commit: seqs
become visible in commit order, and a reader that sees head H knows every change <= H is
visible. (A bare autoincrement would not promise that on PostgreSQL: seq 9 can commit after
seq 10 is visible, and an index that applied "up to 10" would miss 9 for ever.)

The existing templates are logged as adds, so a catch-up from seq 0 is a full rebuild.

**erasure_work**: what an erasure must still do after its commit (delete blobs, destroy
retired key-encryption keys, bring the gallery's indexes up to date, truncate the
write-ahead log), recorded in the erasure's own transaction and completed idempotently
after the commit, at the next start, by the sweeper and by ``probity doctor``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import probity.storage.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = probity.storage.types.UTCDateTime

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER template_log_insert AFTER INSERT ON templates
    BEGIN
        UPDATE template_log_head SET seq = seq + 1 WHERE id = 1;
        INSERT INTO template_changes (seq, gallery_id, model_key, template_id, op)
        VALUES ((SELECT seq FROM template_log_head WHERE id = 1),
                NEW.gallery_id, NEW.model_key, NEW.id, 'add');
    END
    """,
    """
    CREATE TRIGGER template_log_delete AFTER DELETE ON templates
    BEGIN
        UPDATE template_log_head SET seq = seq + 1 WHERE id = 1;
        INSERT INTO template_changes (seq, gallery_id, model_key, template_id, op)
        VALUES ((SELECT seq FROM template_log_head WHERE id = 1),
                OLD.gallery_id, OLD.model_key, OLD.id, 'remove');
    END
    """,
)

_POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION template_log() RETURNS trigger AS $$
    DECLARE
        next_seq bigint;
    BEGIN
        UPDATE template_log_head SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO next_seq;
        IF TG_OP = 'INSERT' THEN
            INSERT INTO template_changes (seq, gallery_id, model_key, template_id, op)
            VALUES (next_seq, NEW.gallery_id, NEW.model_key, NEW.id, 'add');
            RETURN NEW;
        END IF;
        INSERT INTO template_changes (seq, gallery_id, model_key, template_id, op)
        VALUES (next_seq, OLD.gallery_id, OLD.model_key, OLD.id, 'remove');
        RETURN OLD;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER template_log_change AFTER INSERT OR DELETE ON templates
    FOR EACH ROW EXECUTE FUNCTION template_log()
    """,
)


def upgrade() -> None:
    head = op.create_table(
        "template_log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "template_changes",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("gallery_id", sa.String(length=32), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    # A catch-up reads one slot's changes after its applied seq: (gallery, model, seq).
    op.create_index(
        "ix_template_changes_slot",
        "template_changes",
        ["gallery_id", "model_key", "seq"],
    )
    op.create_table(
        "erasure_work",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("blobs", sa.Text(), nullable=False),
        sa.Column("galleries", sa.Text(), nullable=False),
        sa.Column("kek_floor", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    # Today's templates, in id order, as the log's first adds: seq 1..n.
    bind.execute(
        sa.text(
            "INSERT INTO template_changes (seq, gallery_id, model_key, template_id, op) "
            "SELECT ROW_NUMBER() OVER (ORDER BY id), gallery_id, model_key, id, 'add' "
            "FROM templates"
        )
    )
    count = bind.execute(sa.text("SELECT COUNT(*) FROM template_changes")).scalar_one()
    op.bulk_insert(head, [{"id": 1, "seq": int(count)}])
    for statement in _POSTGRES_TRIGGERS if bind.dialect.name == "postgresql" else _SQLITE_TRIGGERS:
        bind.execute(sa.text(statement))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("DROP TRIGGER IF EXISTS template_log_change ON templates"))
        bind.execute(sa.text("DROP FUNCTION IF EXISTS template_log()"))
    else:
        bind.execute(sa.text("DROP TRIGGER IF EXISTS template_log_insert"))
        bind.execute(sa.text("DROP TRIGGER IF EXISTS template_log_delete"))
    op.drop_table("erasure_work")
    op.drop_index("ix_template_changes_slot", table_name="template_changes")
    op.drop_table("template_changes")
    op.drop_table("template_log_head")
