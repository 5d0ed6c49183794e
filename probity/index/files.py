"""Crash-safe file replacement for index files.

A reader (or a restart after a power cut) sees either the old file or the new one, never a
half-written file: the bytes go to a temporary file in the same directory, are flushed to disk,
and then replace the target with one atomic rename, after which the directory itself is
flushed so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
"""Index files hold biometric templates: readable and writable by the owner only."""


def atomic_write_bytes(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Replace ``path`` with ``data`` atomically; the file is created with mode 0600.

    The parent directory must exist. The temporary file (``.<name>.<random>.tmp`` next to the
    target) is removed if anything fails, so no partial files are left behind. Cost: two
    ``fsync`` calls, which dominate for small files (milliseconds on SSD) and are what makes
    the write survive a power cut. ``data`` may be a ``memoryview`` (e.g. of a numpy array) so
    that large indexes are not copied once more just to be written.
    """
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp already creates 0600; say so explicitly in case a platform differs.
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk. A no-op where unsupported (Windows)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself already happened
    finally:
        os.close(fd)
