"""The Alembic migrations create exactly the schema the tables declare, on SQLite and on
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

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
