"""The ``postgres_url`` fixture: a fresh database on the real local PostgreSQL server.

Set PROBITY_TEST_POSTGRES_URL to use another server. Tests using it are marked ``postgres``
(select with ``-m postgres``, leave out with ``-m "not postgres"``); they skip with the reason
when no server answers, and CI starts the server first so they run there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get(
    "PROBITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"probity_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("PROBITY_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required but not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server at {POSTGRES_ADMIN_URL}: {exc}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
