"""atomic_write_bytes: replace-or-nothing, private mode, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from probity.index.files import atomic_write_bytes


def test_writes_and_replaces_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "index.bin"
    path.write_bytes(b"old")
    path.chmod(0o644)
    atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["index.bin"]


def test_accepts_a_memoryview(tmp_path: Path) -> None:
    path = tmp_path / "index.bin"
    atomic_write_bytes(path, memoryview(b"abc"))
    assert path.read_bytes() == b"abc"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.bin"
    path.write_bytes(b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["index.bin"]


def test_missing_parent_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "index.bin", b"x")
