"""atomic_write_bytes: replace-or-nothing, private mode, no leftovers; write_sealed and
read_sealed: the sealed envelope, chunk by chunk, and every way it refuses a file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from probity.index.files import MAGIC, atomic_write_bytes, read_sealed, write_sealed
from probity.index.sealing import IndexFileUnreadable
from tests.index.conftest import FixedSeal


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


def _write(path: Path, payload: bytes, seal: FixedSeal, chunk_bytes: int = 7) -> None:
    write_sealed(
        path,
        payload,
        seal=seal,
        applied_seq=12,
        backend="exact",
        dimension=4,
        count=3,
        chunk_bytes=chunk_bytes,
    )


@pytest.mark.parametrize("size", [0, 1, 6, 7, 8, 14, 15, 100])
def test_sealed_round_trip_across_chunk_boundaries(
    tmp_path: Path, seal: FixedSeal, size: int
) -> None:
    path = tmp_path / "g.npz"
    payload = bytes(range(256))[:size] if size <= 256 else b""
    _write(path, payload, seal)
    data, header = read_sealed(path, seal=seal, backend="exact")
    assert data.dtype == np.uint8
    assert data.tobytes() == payload
    assert (header.applied_seq, header.dimension, header.count, header.epoch) == (12, 4, 3, 1)
    assert header.backend == "exact"
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["g.npz"]


def test_a_numpy_memoryview_is_sealed_without_trouble(tmp_path: Path, seal: FixedSeal) -> None:
    array = np.arange(50, dtype=np.float32).reshape(10, 5)
    _write(tmp_path / "g.npz", array.data, seal, chunk_bytes=64)
    data, _ = read_sealed(tmp_path / "g.npz", seal=seal, backend="exact")
    assert data.tobytes() == array.tobytes()


def _header_and_rest(raw: bytes) -> tuple[dict[str, object], bytes]:
    length = int.from_bytes(raw[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    header: dict[str, object] = json.loads(raw[start : start + length])
    return header, raw[start + length :]


def _with_header(header: dict[str, object], rest: bytes) -> bytes:
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + len(encoded).to_bytes(4, "big") + encoded + rest


def test_an_edited_header_fails_authentication(tmp_path: Path, seal: FixedSeal) -> None:
    """The applied seq is in the clear but authenticated: raising it (to make an index skip
    changes, e.g. an erasure's removal) is caught."""
    path = tmp_path / "g.npz"
    _write(path, b"x" * 20, seal)
    header, rest = _header_and_rest(path.read_bytes())
    header["applied_seq"] = 999
    path.write_bytes(_with_header(header, rest))
    with pytest.raises(IndexFileUnreadable, match="failed authentication in chunk 0 of 3"):
        read_sealed(path, seal=seal, backend="exact")


def test_a_forged_name_in_the_header_does_not_help(tmp_path: Path, seal: FixedSeal) -> None:
    """The file's real name is bound in the associated data, not just written in the header."""
    path = tmp_path / "g.npz"
    _write(path, b"x" * 20, seal)
    header, rest = _header_and_rest(path.read_bytes())
    header["name"] = "h.npz"
    moved = tmp_path / "h.npz"
    moved.write_bytes(_with_header(header, rest))
    with pytest.raises(IndexFileUnreadable, match="failed authentication"):
        read_sealed(moved, seal=seal, backend="exact")


def test_dropping_the_last_chunk_is_caught(tmp_path: Path, seal: FixedSeal) -> None:
    path = tmp_path / "g.npz"
    _write(path, b"x" * 14, seal)  # two full chunks of 7
    header, rest = _header_and_rest(path.read_bytes())
    header["payload_bytes"] = 7
    one_chunk = rest[: 12 + 7 + 16]
    path.write_bytes(_with_header(header, one_chunk))
    with pytest.raises(IndexFileUnreadable, match="failed authentication"):
        read_sealed(path, seal=seal, backend="exact")


def test_swapped_chunks_are_caught(tmp_path: Path, seal: FixedSeal) -> None:
    path = tmp_path / "g.npz"
    _write(path, b"a" * 7 + b"b" * 7 + b"c" * 7, seal)
    header, rest = _header_and_rest(path.read_bytes())
    size = 12 + 7 + 16
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    path.write_bytes(_with_header(header, chunks[1] + chunks[0] + chunks[2]))
    with pytest.raises(IndexFileUnreadable, match="failed authentication in chunk 0"):
        read_sealed(path, seal=seal, backend="exact")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(version=2), "format version 2"),
        (lambda h: h.update(count=-1), "bad header"),
        (lambda h: h.update(epoch="1"), "bad header"),
        (lambda h: h.pop("count"), "wrong fields"),
        (lambda h: h.update(payload_bytes=10**12), "truncated"),
    ],
)
def test_bad_headers_are_refused(
    tmp_path: Path, seal: FixedSeal, edit: object, message: str
) -> None:
    path = tmp_path / "g.npz"
    _write(path, b"x" * 20, seal)
    header, rest = _header_and_rest(path.read_bytes())
    edit(header)  # type: ignore[operator]
    path.write_bytes(_with_header(header, rest))
    with pytest.raises(IndexFileUnreadable, match=message):
        read_sealed(path, seal=seal, backend="exact")


def test_not_json_and_trailing_bytes_are_refused(tmp_path: Path, seal: FixedSeal) -> None:
    path = tmp_path / "g.npz"
    path.write_bytes(MAGIC + (3).to_bytes(4, "big") + b"{{{")
    with pytest.raises(IndexFileUnreadable, match="not JSON"):
        read_sealed(path, seal=seal, backend="exact")
    _write(path, b"x" * 20, seal)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(IndexFileUnreadable, match="1 bytes after its last chunk"):
        read_sealed(path, seal=seal, backend="exact")


def test_a_failed_sealed_write_keeps_the_old_file(
    tmp_path: Path, seal: FixedSeal, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.npz"
    _write(path, b"old", seal)

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _write(path, b"new", seal)
    assert read_sealed(path, seal=seal, backend="exact")[0].tobytes() == b"old"
    assert os.listdir(tmp_path) == ["g.npz"]
