"""gallery counts: subjects and enrolments per gallery, templates per gallery and model,
kept by database triggers

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


_TEMPLATE_SQLITE = (
    """
    CREATE TRIGGER template_count_insert AFTER INSERT ON templates
    BEGIN
        INSERT OR IGNORE INTO template_counts (gallery_id, model_key, templates)
        VALUES (NEW.gallery_id, NEW.model_key, 0);
        UPDATE template_counts SET templates = templates + 1
        WHERE gallery_id = NEW.gallery_id AND model_key = NEW.model_key;
    END
    """,
    """
    CREATE TRIGGER template_count_delete AFTER DELETE ON templates
    BEGIN
        UPDATE template_counts SET templates = templates - 1
        WHERE gallery_id = OLD.gallery_id AND model_key = OLD.model_key;
    END
    """,
)

_TEMPLATE_POSTGRES = (
    """
    CREATE FUNCTION template_count() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO template_counts (gallery_id, model_key, templates)
            VALUES (NEW.gallery_id, NEW.model_key, 1)
            ON CONFLICT (gallery_id, model_key)
            DO UPDATE SET templates = template_counts.templates + 1;
            RETURN NEW;
        END IF;
        UPDATE template_counts SET templates = templates - 1
        WHERE gallery_id = OLD.gallery_id AND model_key = OLD.model_key;
        RETURN OLD;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER template_count_change AFTER INSERT OR DELETE ON templates
    FOR EACH ROW EXECUTE FUNCTION template_count()
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
    # Templates per gallery and model (two models while a model migration runs): what
    # ``index status`` compares each index's vector count with.
    op.create_table(
        "template_counts",
        sa.Column("gallery_id", sa.String(length=32), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("templates", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gallery_id", "model_key"),
    )
    bind.execute(
        sa.text(
            "INSERT INTO template_counts (gallery_id, model_key, templates) "
            "SELECT gallery_id, model_key, COUNT(*) FROM templates GROUP BY gallery_id, model_key"
        )
    )
    postgres = bind.dialect.name == "postgresql"
    for statement in _TEMPLATE_POSTGRES if postgres else _TEMPLATE_SQLITE:
        bind.execute(sa.text(statement))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("DROP TRIGGER IF EXISTS template_count_change ON templates"))
        bind.execute(sa.text("DROP FUNCTION IF EXISTS template_count()"))
    else:
        for name in ("template_count_insert", "template_count_delete"):
            bind.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
    op.drop_table("template_counts")
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
