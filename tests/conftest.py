"""Fixtures shared by every test folder: where the photos are, and one real face engine."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from probity.config import EngineSettings
from probity.engine.dlib_engine import DlibEngine
from probity.interfaces.cli.main import main
from tests.cli.conftest import GALLERY_PHOTOS, NasaHome, shared_faces, write_manifest

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


@pytest.fixture(scope="session")
def nasa_home(tmp_path_factory: pytest.TempPathFactory) -> NasaHome:
    """A home with gallery 'crew' holding GALLERY_PHOTOS and case 'CASE-1' (granted)."""
    faces = shared_faces()
    home = tmp_path_factory.mktemp("nasa") / "home"
    assert main(["init", "--home", str(home)]) == 0
    assert (
        main(
            [
                "gallery",
                "create",
                "crew",
                "--home",
                str(home),
                "--policy",
                "NASA crew portraits",
                "--retention-days",
                "3650",
                "--jurisdiction",
                "US",
            ]
        )
        == 0
    )
    manifest = write_manifest(home.parent / "crew.csv", GALLERY_PHOTOS, faces)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["enrol", "crew", "--manifest", str(manifest), "--home", str(home), "--json"])
    assert (
        main(
            [
                "case",
                "open",
                "CASE-1",
                "--home",
                str(home),
                "--offence",
                "kidnapping",
                "--justification",
                "probe photos from the scene",
                "--authorisation",
                "AUTH-1",
            ]
        )
        == 0
    )
    return NasaHome(home, code, buffer.getvalue())
