"""Migration 0005 (enrolment jobs) applies on a database at 0004 and reverts cleanly, on
SQLite and on PostgreSQL. (tests/storage/test_migrations.py checks that the whole chain
creates exactly the tables the code declares.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from probity.storage.db import Database, alembic_config


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_0005_adds_the_jobs_table_and_reverts(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'p.db'}"
    )
    db = Database(url)

    def move(upgrade: bool, revision: str) -> None:
        with db.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            (command.upgrade if upgrade else command.downgrade)(config, revision)

    def tables() -> set[str]:
        return set(inspect(db.engine).get_table_names())

    move(True, "0004")
    assert "galleries" in tables() and "enrolment_jobs" not in tables()
    move(True, "0005")
    columns = {c["name"] for c in inspect(db.engine).get_columns("enrolment_jobs")}
    assert {"id", "gallery_id", "organisation_id", "actor", "status", "total", "done"} <= columns
    assert {"enrolled", "skipped", "reports", "error", "started_at", "finished_at"} <= columns
    indexes = {i["name"] for i in inspect(db.engine).get_indexes("enrolment_jobs")}
    assert "ix_enrolment_jobs_gallery_id" in indexes
    move(False, "0004")
    assert "enrolment_jobs" not in tables()
    move(True, "head")
    assert db.is_current()
    db.dispose()
