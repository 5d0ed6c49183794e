"""What the search-path indexes of migration 0012 buy: the three reads every search makes
that used to scan a table growing with the gallery or the search history.

- ``Enrolments.by_template_ids`` for 40 index hits (enrolments by template id);
- the two rate-limit counts (one person's and one organisation's searches in the last 60 s);
- for comparison, a COUNT of the gallery's templates of its model, which a search made for
  the N of FPIR / N before it read the index's vector count instead (no index helps it).

It builds a SQLite home with ``--rows`` enrolments / templates and as many stored searches
(filler rows written with raw SQL: only the columns these reads touch carry real values),
times each read (median of ``--repeat`` runs) with the indexes, then drops them and times
again. Usage::

    .venv/bin/python bench/search_path_indexes.py [--rows 300000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from probity.config import Settings
from probity.services.clock import ManualClock
from probity.services.container import initialise

INDEXES = (
    "ix_enrolments_template_id",
    "ix_searches_user_at",
    "ix_searches_organisation_at",
)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _filler(db: sqlite3.Connection, table: str, rows: int, given: dict[str, Any]) -> None:
    """``rows`` rows of ``table``: the columns named in ``given`` (a function of the row
    number or a constant), every other NOT NULL column a constant of its type."""
    columns = db.execute(f"PRAGMA table_info({table})").fetchall()
    names, makers = [], []
    for _, name, kind, notnull, default, _pk in columns:
        if name in given:
            value = given[name]
        elif not notnull or default is not None or (name == "id" and kind == "INTEGER"):
            continue
        elif "INT" in kind.upper():
            value = 0
        elif "FLOAT" in kind.upper() or "REAL" in kind.upper():
            value = 0.0
        elif "BLOB" in kind.upper():
            value = b""
        else:
            value = "{}" if name in ("box", "quality", "galleries", "faces", "threshold") else "x"
        names.append(name)
        makers.append(value)
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    db.executemany(sql, ([m(i) if callable(m) else m for m in makers] for i in range(rows)))


def _median_ms(db: sqlite3.Connection, sql: str, params: tuple[Any, ...], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        db.execute(sql, params).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp()) / "home"
    settings = Settings(home=home)
    initialise(settings, actor="bench", clock=ManualClock(NOW))
    db = sqlite3.connect(home / "probity.db")
    n = args.rows
    iso = (NOW - timedelta(days=30)).isoformat()
    _filler(db, "templates", n, {"gallery_id": "g1", "model_key": "m@1", "subject_id": "s"})
    _filler(
        db,
        "enrolments",
        n,
        {
            "id": lambda i: f"e{i:012d}",
            "template_id": lambda i: i + 1,
            "subject_id": lambda i: f"s{i:012d}",
            "image_sha256": lambda i: f"{i:064d}",
            "gallery_id": "g1",
        },
    )
    _filler(
        db,
        "searches",
        n,
        {
            "id": lambda i: f"q{i:012d}",
            "at": iso,
            "user_id": lambda i: f"u{i % 50}",
            "organisation_id": lambda i: f"o{i % 5}",
        },
    )
    db.commit()
    since = (NOW - timedelta(seconds=60)).isoformat()
    hits = tuple(range(1, n, max(1, n // 40)))[:40]
    reads = {
        "enrolments_by_40_template_ids": (
            f"SELECT * FROM enrolments WHERE template_id IN ({', '.join('?' * len(hits))})",
            hits,
        ),
        "user_searches_last_60_s": (
            "SELECT count(*) FROM searches WHERE at >= ? AND user_id = ?",
            (since, "u7"),
        ),
        "organisation_searches_last_60_s": (
            "SELECT count(*) FROM searches WHERE at >= ? AND organisation_id = ?",
            (since, "o3"),
        ),
        "gallery_templates_of_model": (
            "SELECT count(*) FROM templates WHERE gallery_id = ? AND model_key = ?",
            ("g1", "m@1"),
        ),
    }
    result: dict[str, Any] = {"rows": n, "repeat": args.repeat, "with_indexes_ms": {}}
    for name, (sql, params) in reads.items():
        result["with_indexes_ms"][name] = _median_ms(db, sql, params, args.repeat)
    for index in INDEXES:
        db.execute(f"DROP INDEX {index}")
    result["without_indexes_ms"] = {
        name: _median_ms(db, sql, params, args.repeat) for name, (sql, params) in reads.items()
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
