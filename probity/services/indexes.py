"""One vector index per gallery, kept in step with the encrypted templates.

The index files are derived data. Changes take an exclusive ``flock`` on
``<index_dir>/<gallery_id>.lock`` and re-read the file if another process changed it, so two
CLI processes enrolling at once cannot lose each other's vectors. If an index file is missing
or stale (a crash between the database commit and the index save), ``rebuild`` recreates it
from the templates.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from probity.index.base import Hit, VectorIndex
from probity.index.factory import index_file, open_index


class IndexSet:
    def __init__(self, *, directory: Path, backend: str, dimension: int) -> None:
        self.directory = directory
        self.backend = backend
        self.dimension = dimension
        self._open: dict[str, tuple[VectorIndex, float]] = {}
        self._lock = threading.RLock()

    def _stem(self, gallery_id: str) -> Path:
        return self.directory / gallery_id

    def path(self, gallery_id: str) -> Path:
        return index_file(self.backend, self._stem(gallery_id))

    def _mtime(self, gallery_id: str) -> float:
        try:
            return self.path(gallery_id).stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0

    def get(self, gallery_id: str) -> VectorIndex:
        """The gallery's index, reloaded when its file changed since we last read it."""
        with self._lock:
            cached = self._open.get(gallery_id)
            mtime = self._mtime(gallery_id)
            if cached is None or cached[1] != mtime:
                self.directory.mkdir(parents=True, exist_ok=True)
                index = open_index(self.backend, self._stem(gallery_id), self.dimension)
                self._open[gallery_id] = (index, mtime)
                return index
            return cached[0]

    @contextmanager
    def _exclusive(self, gallery_id: str) -> Iterator[VectorIndex]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.directory / f"{gallery_id}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                index = self.get(gallery_id)
                yield index
                index.save()
                self._open[gallery_id] = (index, self._mtime(gallery_id))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, gallery_id: str, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        if not len(ids):
            return
        with self._exclusive(gallery_id) as index:
            index.add(np.asarray(ids, dtype=np.int64), vectors)

    def remove(self, gallery_id: str, ids: Sequence[int]) -> int:
        """Remove and save: the saved file no longer holds the vectors' bytes."""
        with self._exclusive(gallery_id) as index:
            return index.remove(np.asarray(ids, dtype=np.int64))

    def replace_all(
        self, gallery_id: str, ids: Sequence[int], vectors: NDArray[np.float32]
    ) -> None:
        with self._exclusive(gallery_id) as index:
            index.clear()
            if len(ids):
                index.add(np.asarray(ids, dtype=np.int64), vectors)

    def search(self, gallery_id: str, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        index = self.get(gallery_id)
        if len(index) == 0:
            return [[] for _ in range(len(queries))]
        return index.search(queries, k)

    def size(self, gallery_id: str) -> int:
        return len(self.get(gallery_id))
