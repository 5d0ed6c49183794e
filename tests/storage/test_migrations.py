"""The Alembic migrations create exactly the schema the tables declare, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from probity.storage.db import Database
from probity.storage.tables import Base


def test_sqlite_migration_matches_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    assert not db.is_current()
    db.migrate()
    db.migrate()  # idempotent
    assert db.is_current()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert diff == []
    assert mode == "wal"
    db.dispose()


@pytest.mark.postgres
def test_postgres_migration_matches_tables(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.migrate()
    assert db.is_current()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.dispose()


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """WAL + BEGIN IMMEDIATE for writers only: a read runs while a write transaction is
    open, and a second writer waits (here: times out) instead of forking the audit chain."""
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate()
    with db.transaction() as writer:
        writer.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'x')"))
        with db.read() as reader:
            assert reader.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 0
        other = sqlite3.connect(tmp_path / "p.db", timeout=0.2, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    with db.read() as reader:
        assert reader.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 1
    db.dispose()
