"""Fixtures of the crash matrix: homes on SQLite with the real default engine (SFace), made
once per session and copied for each test (enrolling with the real model is the slow part;
``shutil.copytree`` of a small home is not)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.crash.harness import GALLERY, copy_home, ok, probity, write_manifest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "crash: kills real probity processes at named crash points (tests/crash)"
    )


@pytest.fixture(scope="session")
def blank_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised home with the empty gallery 'custody' on the default model."""
    home = tmp_path_factory.mktemp("crash-blank") / "home"
    ok(home, "init")
    ok(
        home, "gallery", "create", GALLERY, "--policy", "custody images of charged persons",
        "--retention-days", "365", "--jurisdiction", "GB",
    )  # fmt: skip
    return home


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("crash-manifest") / "intake.csv")


@pytest.fixture(scope="session")
def enrolled_home(
    blank_home: Path, manifest: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``blank_home`` with every manifest row enrolled by ``probity enrol --manifest``."""
    home = copy_home(blank_home, tmp_path_factory.mktemp("crash-enrolled") / "home")
    result = probity(home, "enrol", GALLERY, "--manifest", str(manifest), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["enrolled"] == 5, summary
    return home


@pytest.fixture
def fresh(tmp_path: Path) -> Callable[[Path], Path]:
    """``fresh(home)``: a copy of a prepared home for this test alone."""

    def make(source: Path) -> Path:
        return copy_home(source, tmp_path / "home")

    return make
