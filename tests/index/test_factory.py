"""Choosing a backend by name, the public surface, and cheap imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import probity.index
from probity.errors import InvalidInput
from probity.index import ExactIndex, index_file, open_index
from probity.index.faiss_index import FaissIndex
from tests.index.conftest import FixedSeal


def test_index_file_appends_the_backend_suffix(tmp_path: Path) -> None:
    assert index_file("faiss", tmp_path / "gallery-1") == tmp_path / "gallery-1.faiss"
    assert index_file("exact", tmp_path / "gallery-1") == tmp_path / "gallery-1.npz"
    assert index_file("faiss", tmp_path / "gallery.v2") == tmp_path / "gallery.v2.faiss"


def test_open_index_builds_the_named_backend(tmp_path: Path, seal: FixedSeal) -> None:
    assert isinstance(open_index("faiss", tmp_path / "a", 4, seal), FaissIndex)
    assert isinstance(open_index("exact", tmp_path / "b", 4, seal), ExactIndex)


def test_unknown_backend_is_invalid_input(tmp_path: Path, seal: FixedSeal) -> None:
    with pytest.raises(
        InvalidInput, match="unknown index backend 'hnsw': choose one of 'exact', 'faiss'"
    ):
        open_index("hnsw", tmp_path / "a", 4, seal)
    with pytest.raises(InvalidInput):
        index_file("", tmp_path / "a")


@pytest.mark.parametrize("dimension", [0, -3])
def test_dimension_must_be_positive(tmp_path: Path, seal: FixedSeal, dimension: int) -> None:
    for backend in ("exact", "faiss", "ivf"):
        with pytest.raises(InvalidInput, match="dimension must be"):
            open_index(backend, tmp_path / backend, dimension, seal)


def test_public_names() -> None:
    assert sorted(probity.index.__all__) == [
        "BACKENDS",
        "ExactIndex",
        "Hit",
        "VectorIndex",
        "atomic_write_bytes",
        "index_file",
        "index_paths",
        "index_plaintext",
        "open_index",
    ]


def test_importing_probity_index_does_not_import_faiss() -> None:
    code = "import sys, probity.index; sys.exit('faiss' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
