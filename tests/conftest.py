"""Fixtures shared by every test folder: where the photos are, and one real face engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from probity.config import EngineSettings
from probity.engine.dlib_engine import DlibEngine

pytest_plugins = ["tests.pg"]  # the postgres_url fixture

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "tests" / "data"
SHARED_FACES_DIR = REPO_ROOT / ".." / "shared" / "faces"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: the photos from PyPI packages that ship with the project (see its README)."""
    return DATA_DIR


@pytest.fixture(scope="session")
def shared_faces_dir() -> Path:
    """<repo>/../shared/faces: NASA photos read in place where present; skips where absent."""
    if not SHARED_FACES_DIR.is_dir():
        pytest.skip("../shared/faces not present: NASA photos are read from there, never copied")
    return SHARED_FACES_DIR.resolve()


@pytest.fixture(scope="session")
def engine() -> DlibEngine:
    """One DlibEngine with default settings for the session (models load on first use)."""
    return DlibEngine(EngineSettings())
