"""The reads every search makes use an index, not a scan of a table that grows with the
gallery or the search history (issue "Scale", item 4): checked with SQLite's
``EXPLAIN QUERY PLAN`` on the statements SQLAlchemy actually sends, and with PostgreSQL's
``EXPLAIN`` with sequential scans priced out (on tables this small its planner would rightly
prefer a scan)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import Connection

from probity.config import Settings
from probity.services.clock import ManualClock
from probity.services.container import initialise
from probity.storage.db import Database
from probity.storage.tables import EnrolmentRow, SearchRow

SINCE = datetime(2026, 11, 1, tzinfo=UTC)

QUERIES: dict[str, tuple[Callable[[], Select[tuple[object]]], str]] = {
    "enrolments by template id": (
        lambda: select(EnrolmentRow).where(EnrolmentRow.template_id.in_([1, 2, 3])),
        "ix_enrolments_template_id",
    ),
    "a person's recent searches": (
        lambda: (
            select(func.count())
            .select_from(SearchRow)
            .where(SearchRow.at >= SINCE, SearchRow.user_id == "u1")
        ),
        "ix_searches_user_at",
    ),
    "an organisation's recent searches": (
        lambda: (
            select(func.count())
            .select_from(SearchRow)
            .where(SearchRow.at >= SINCE, SearchRow.organisation_id == "o1")
        ),
        "ix_searches_organisation_at",
    ),
}


def _plan(conn: Connection, query: Select[tuple[object]], dialect: str) -> str:
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    rows = conn.execute(text(prefix + str(compiled))).all()
    return "\n".join(" ".join(str(c) for c in row) for row in rows)


def _home(tmp_path: Path, database_url: str | None) -> Database:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    initialise(settings, actor="test", clock=ManualClock(SINCE))
    return Database(settings.resolved_database_url)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sqlite_search_reads_use_an_index(tmp_path: Path, name: str) -> None:
    db = _home(tmp_path, None)
    build, index = QUERIES[name]
    with db.engine.connect() as conn:
        plan = _plan(conn, build(), "sqlite")
    assert index in plan, f"{name}: {plan}"
    assert "SCAN" not in plan.replace(f"USING COVERING INDEX {index}", ""), plan


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_postgres_search_reads_use_an_index(tmp_path: Path, postgres_url: str, name: str) -> None:
    db = _home(tmp_path, postgres_url)
    build, index = QUERIES[name]
    with db.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = _plan(conn, build(), "postgresql")
    assert index in plan, f"{name}: {plan}"
