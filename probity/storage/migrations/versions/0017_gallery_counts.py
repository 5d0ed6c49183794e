"""gallery counts: the number of subjects of each gallery, kept by database triggers

A search states how many people it compared the probe with, and the gallery pages show
each gallery's size. Both ran ``SELECT COUNT(*) FROM subjects WHERE gallery_id = ?``, which
reads every index entry of the gallery: tens of milliseconds a search at 1M subjects, linear
in the gallery (issue "Scale"); the gallery list did the same for enrolments. Triggers on
``subjects`` and ``enrolments`` now keep one row per gallery, in the same transaction as the
insert or delete, so each count is one primary-key read and exactly as current as the rows it
counts (the transaction that adds a subject sees its own +1; a
reader sees the count its snapshot's rows have).

Writers of one gallery serialise on its count row until they commit. They already serialise
on the template log's head row (0014) whenever they add templates, so this adds no new wait.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = {"subjects": "subjects", "enrolments": "enrolments"}
"""Counted table -> its column in ``gallery_counts`` (both have a ``gallery_id``)."""


def _sqlite_triggers(table: str, column: str) -> tuple[str, ...]:
    ensure = "INSERT OR IGNORE INTO gallery_counts (gallery_id, subjects, enrolments) VALUES"
    return (
        f"""
        CREATE TRIGGER gallery_count_{table}_insert AFTER INSERT ON {table}
        BEGIN
            {ensure} (NEW.gallery_id, 0, 0);
            UPDATE gallery_counts SET {column} = {column} + 1 WHERE gallery_id = NEW.gallery_id;
        END
        """,
        f"""
        CREATE TRIGGER gallery_count_{table}_delete AFTER DELETE ON {table}
        BEGIN
            UPDATE gallery_counts SET {column} = {column} - 1 WHERE gallery_id = OLD.gallery_id;
        END
        """,
        f"""
        CREATE TRIGGER gallery_count_{table}_move AFTER UPDATE OF gallery_id ON {table}
        WHEN OLD.gallery_id IS NOT NEW.gallery_id
        BEGIN
            UPDATE gallery_counts SET {column} = {column} - 1 WHERE gallery_id = OLD.gallery_id;
            {ensure} (NEW.gallery_id, 0, 0);
            UPDATE gallery_counts SET {column} = {column} + 1 WHERE gallery_id = NEW.gallery_id;
        END
        """,
    )


def _postgres_triggers(table: str, column: str) -> tuple[str, ...]:
    return (
        f"""
        CREATE FUNCTION gallery_count_{table}() RETURNS trigger AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE gallery_counts SET {column} = {column} - 1
                WHERE gallery_id = OLD.gallery_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO gallery_counts (gallery_id, subjects, enrolments)
                VALUES (NEW.gallery_id, 0, 0) ON CONFLICT (gallery_id) DO NOTHING;
                UPDATE gallery_counts SET {column} = {column} + 1
                WHERE gallery_id = NEW.gallery_id;
                RETURN NEW;
            END IF;
            RETURN OLD;
        END;
        $$ LANGUAGE plpgsql
        """,
        f"""
        CREATE TRIGGER gallery_count_{table}_change AFTER INSERT OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION gallery_count_{table}()
        """,
        f"""
        CREATE TRIGGER gallery_count_{table}_move AFTER UPDATE OF gallery_id ON {table}
        FOR EACH ROW WHEN (OLD.gallery_id IS DISTINCT FROM NEW.gallery_id)
        EXECUTE FUNCTION gallery_count_{table}()
        """,
    )


def upgrade() -> None:
    op.create_table(
        "gallery_counts",
        sa.Column("gallery_id", sa.String(length=32), nullable=False),
        sa.Column("subjects", sa.BigInteger(), nullable=False),
        sa.Column("enrolments", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gallery_id"),
    )
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "INSERT INTO gallery_counts (gallery_id, subjects, enrolments) "
            "SELECT g.id, "
            "(SELECT COUNT(*) FROM subjects s WHERE s.gallery_id = g.id), "
            "(SELECT COUNT(*) FROM enrolments e WHERE e.gallery_id = g.id) "
            "FROM galleries g"
        )
    )
    make = _postgres_triggers if bind.dialect.name == "postgresql" else _sqlite_triggers
    for table, column in COUNTED.items():
        for statement in make(table, column):
            bind.execute(sa.text(statement))


def downgrade() -> None:
    bind = op.get_bind()
    for table in COUNTED:
        if bind.dialect.name == "postgresql":
            for name in ("change", "move"):
                bind.execute(
                    sa.text(f"DROP TRIGGER IF EXISTS gallery_count_{table}_{name} ON {table}")
                )
            bind.execute(sa.text(f"DROP FUNCTION IF EXISTS gallery_count_{table}()"))
        else:
            for name in ("insert", "delete", "move"):
                bind.execute(sa.text(f"DROP TRIGGER IF EXISTS gallery_count_{table}_{name}"))
    op.drop_table("gallery_counts")
