"""Blob store for encrypted images. Blobs are opaque bytes (already sealed by the caller).

``BlobStore`` is the protocol; ``FileBlobStore`` keeps each blob as one file under
``<root>/<first two hex chars>/<id>``, written atomically with mode 0600.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from probity.errors import IntegrityError, NotFound

_BLOB_ID = re.compile(r"^[0-9a-f]{32,64}$")


class BlobStore(Protocol):
    def put(self, blob_id: str, data: bytes) -> None: ...

    def get(self, blob_id: str) -> bytes: ...

    def delete(self, blob_id: str) -> bool: ...

    def exists(self, blob_id: str) -> bool: ...


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, blob_id: str) -> Path:
        if not _BLOB_ID.match(blob_id):
            raise IntegrityError(f"invalid blob id {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def put(self, blob_id: str, data: bytes) -> None:
        path = self._path(blob_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, blob_id: str) -> bytes:
        path = self._path(blob_id)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {blob_id} not found") from exc

    def delete(self, blob_id: str) -> bool:
        """Remove the blob's file. Overwriting first would not help on journalling or
        copy-on-write file systems; the crypto-shredded key is what makes it unreadable."""
        path = self._path(blob_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).exists()
