"""Locating and checking the dlib weights without importing face_recognition_models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probity.config import EngineSettings
from probity.engine.dlib_engine import DlibEngine
from probity.engine.models import (
    MODEL,
    RESNET_FILE,
    WEIGHTS_FILES,
    DlibModels,
    find_models_dir,
    weights_path,
)
from probity.errors import IntegrityError


def test_model_identity() -> None:
    assert MODEL.key == "dlib-resnet-v1@face_recognition_models-0.3.0"
    assert MODEL.dimension == 128
    assert DlibEngine(EngineSettings()).model == MODEL


def test_weights_found_and_verified_without_importing_the_package() -> None:
    script = (
        "import sys\n"
        "from probity.engine.models import WEIGHTS_FILES, find_models_dir, weights_path\n"
        "folder = find_models_dir()\n"
        "for w in WEIGHTS_FILES: weights_path(folder, w)\n"
        "assert 'face_recognition_models' not in sys.modules\n"
        "assert 'pkg_resources' not in sys.modules\n"
        "assert 'dlib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_missing_weights_file_is_an_integrity_error(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="dlib weights file missing"):
        weights_path(tmp_path, RESNET_FILE)


def test_altered_weights_file_is_an_integrity_error(tmp_path: Path) -> None:
    (tmp_path / RESNET_FILE.name).write_bytes(b"not the ResNet")
    with pytest.raises(IntegrityError, match="does not match dlib-resnet-v1"):
        _ = DlibModels(tmp_path).resnet


def test_all_weights_present() -> None:
    folder = find_models_dir()
    assert all((folder / w.name).is_file() for w in WEIGHTS_FILES)


def test_engine_construction_loads_nothing() -> None:
    engine = DlibEngine(EngineSettings(), models=DlibModels(Path("/nonexistent")))
    assert engine.model == MODEL  # a bad folder only fails when a model is first needed
