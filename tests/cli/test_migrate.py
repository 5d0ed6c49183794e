"""``probity migrate``: an explicit step that applies the Alembic migrations a newer Probity
needs; commands on an out-of-date database say to run it, naming what is pending."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from probity.storage.db import Database, alembic_config


def _database_at(path: Path, revision: str) -> None:
    """A database as an older Probity left it: migrated up to ``revision`` only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        db.dispose()


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_migrate_lists_then_applies_what_is_pending(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    _database_at(home / "probity.db", "0005")
    check = probity("migrate", "--home", str(home), "--check")
    assert check.code == 1
    assert "Pending: 0006 rights requests" in check.out and "revision 0005" in check.out
    assert _revision(home / "probity.db") == "0005"  # --check changes nothing

    assert not (home / "audit-witness.jsonl").exists()  # --check starts nothing
    run = probity("migrate", "--home", str(home))
    assert run.code == 0, run.err
    assert "Applied: 0006" in run.out
    # A home from before the witness gets an empty one, and is told so, once.
    assert "Started the audit witness" in run.out
    assert (home / "audit-witness.jsonl").read_bytes() == b""
    head = _revision(home / "probity.db")
    assert head > "0006"
    again = probity("migrate", "--home", str(home), "--check")
    assert again.code == 0 and f"The schema is current (revision {head})" in again.out
    twice = probity("migrate", "--home", str(home))
    assert twice.code == 0 and "witness" not in twice.out


def test_commands_on_an_out_of_date_database_say_to_migrate(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    assert probity("init", "--home", str(home)).code == 0
    with sqlite3.connect(home / "probity.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0006'")
    run = probity("gallery", "list", "--home", str(home))
    assert run.code != 0
    assert "out of date, migrations pending: 0007" in run.err
    assert "run 'probity migrate'" in run.err


def test_migrate_needs_an_initialised_home(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("migrate", "--home", str(tmp_path / "nowhere"))
    assert run.code != 0 and "run 'probity init'" in run.err
    assert not (tmp_path / "nowhere").exists()
