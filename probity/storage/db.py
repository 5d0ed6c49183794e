"""Database connection, transactions and migrations.

SQLite is the embedded default: WAL journal (readers don't block the writer), foreign keys
on, a 30 s busy timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so two
processes never both read the audit head and then collide on the write. PostgreSQL is used as
is; the audit head is locked with ``SELECT ... FOR UPDATE`` there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so that we can say BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA secure_delete=ON")  # overwrite deleted content (erasure, issue 5)
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str, *, for_writing: bool = True) -> Engine:
    """Create the SQLAlchemy engine for ``url`` with the per-backend settings above.

    On SQLite, a writing engine starts every transaction with ``BEGIN IMMEDIATE`` (takes the
    write lock at once); a reading engine with a plain ``BEGIN``, so readers run beside a
    writer under WAL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = _sqlite_begin_immediate if for_writing else _sqlite_begin_deferred
        event.listen(engine, "begin", begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """The engine plus session factories. ``transaction()`` is the unit of work: everything
    inside commits together or not at all. ``read()`` is for code that only reads: on SQLite it
    does not take the write lock, so searches do not queue behind enrolments."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.engine.dialect.name == "sqlite":
            self._read_engine = make_engine(url, for_writing=False)
            self._read_sessions = sessionmaker(self._read_engine, expire_on_commit=False)
        else:
            self._read_engine = self.engine
            self._read_sessions = self._sessions

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_current(self) -> bool:
        """True when the schema is at the newest revision."""
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return self.current_revision() == head

    def current_revision(self) -> str | None:
        """The schema's Alembic revision (None: no schema yet)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def pending_migrations(self) -> list[tuple[str, str]]:
        """(revision, what it does) of every migration not yet applied, oldest first;
        empty when the schema is current. ``probity migrate`` applies them."""
        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_current_head()
        current = self.current_revision()
        if head is None or current == head:
            return []
        found = script.iterate_revisions(head, current or "base")
        return [(r.revision, (r.doc or "").strip()) for r in reversed(list(found))]

    def checkpoint(self) -> bool:
        """SQLite: move the write-ahead log into the database file and truncate it, so pages
        an erasure overwrote (``secure_delete``) do not live on in the WAL. False when a
        reader kept it from completing (the next checkpoint finishes the job). No-op
        elsewhere (PostgreSQL's own WAL and VACUUM are the operator's; see the README)."""
        if not self.is_sqlite:
            return True
        # On a raw connection (autocommit, see _sqlite_pragmas): a checkpoint cannot run
        # inside the BEGIN IMMEDIATE that SQLAlchemy's connections start with.
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
            busy = bool(row and row[0])
            cursor.close()
        finally:
            raw.close()
        return not busy

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config
