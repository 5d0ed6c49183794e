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
from sqlalchemy import Select, event, func, select, text
from sqlalchemy.engine import Connection

from probity.config import Settings
from probity.services.clock import ManualClock
from probity.services.container import initialise
from probity.storage.db import Database
from probity.storage.repositories import Subjects
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


def _sent(db: Database, read: Callable[[Subjects], object]) -> tuple[str, object]:
    """The statement (and parameters) a repository call sends to the driver."""
    sent: list[tuple[str, object]] = []

    def keep(_c: object, _cur: object, statement: str, parameters: object, *_: object) -> None:
        sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        with db.transaction() as session:  # on the engine listened to
            read(Subjects(session))
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    return next((s, p) for s, p in sent if "subject_keys" in s)


def test_sqlite_reads_wrapped_keys_from_the_covering_index_alone(tmp_path: Path) -> None:
    """A search opens each candidate's data key: one page of ``ix_subject_keys_covering``
    a key, not the primary-key index and then the table row (migration 0019)."""
    db = _home(tmp_path, None)
    statement, parameters = _sent(db, lambda s: s.wrapped_keys(["s1", "s2", "s3"]))
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()  # type: ignore[arg-type]
    plan = "\n".join(" ".join(str(c) for c in row) for row in rows)
    assert "USING COVERING INDEX ix_subject_keys_covering" in plan, plan
