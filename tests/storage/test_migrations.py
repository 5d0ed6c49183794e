"""The Alembic migrations create exactly the schema the tables declare, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from probity.storage.db import Database, alembic_config
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


def _upgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _receipt_index_statement_is_added(db: Database) -> None:
    """0018 adds ``erasure_receipts.index_statement``: a receipt written before it keeps
    every field and reads NULL there (what its index erasure did was not recorded)."""
    _upgrade(db, "0017")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO erasure_receipts (id, at, actor, organisation, gallery, subject_id,"
                " subject_reference, cause, reason, request_id, enrolments, templates, blobs,"
                " index_vectors, audit_seq) VALUES ('ER-2026-OLD', '2026-12-01 10:00:00',"
                " 'alice', NULL, 'custody', 's1', 'REF-1', 'request', 'court order', NULL,"
                " 1, 1, 1, 1, 7)"
            )
        )
    _upgrade(db, "0018")
    assert db.current_revision() == "0018"
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT subject_reference, index_vectors, index_statement FROM erasure_receipts")
        ).one()
    assert tuple(row) == ("REF-1", 1, None)
    db.dispose()


def test_sqlite_0018_adds_the_receipts_index_statement(tmp_path: Path) -> None:
    _receipt_index_statement_is_added(Database(f"sqlite:///{tmp_path / 'p.db'}"))


@pytest.mark.postgres
def test_postgres_0018_adds_the_receipts_index_statement(postgres_url: str) -> None:
    _receipt_index_statement_is_added(Database(postgres_url))
