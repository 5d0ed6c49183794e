"""One vector index per gallery and model, kept in step with the encrypted templates.

A gallery's templates are of one model, so it has one index; during a model migration the
new model's index is built beside it (another **slot**, ``IndexSlot``) and the old one is
dropped at the swap. Slot file names: ``<gallery_id>`` for dlib-resnet-v1 (the name every
index had before there were other models, so older homes keep their files) and
``<gallery_id>.<model name>.<model version>`` for every other model.

The index files are derived data. Changes take an exclusive ``flock`` on
``<index_dir>/<slot>.lock`` and re-read the file if another process changed it, so two
CLI processes enrolling at once cannot lose each other's vectors. If an index file is missing
or stale (a crash between the database commit and the index save), ``rebuild`` recreates it
from the templates.
"""

from __future__ import annotations

import fcntl
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import ModelVersion
from probity.domain.gallery import Gallery
from probity.index.base import Hit, VectorIndex
from probity.index.factory import index_file, open_index

LEGACY_MODEL_KEY = "dlib-resnet-v1@face_recognition_models-0.3.0"
"""The model whose index file is named by the gallery id alone (as before models were many)."""


@dataclass(frozen=True, slots=True)
class IndexSlot:
    """The index of one gallery's templates of one model."""

    gallery_id: str
    model: ModelVersion

    @classmethod
    def of(cls, gallery: Gallery, model: ModelVersion | None = None) -> IndexSlot:
        """The slot of ``gallery``'s own model (or of ``model``, for a migration)."""
        return cls(gallery.id, model or gallery.model)

    @property
    def name(self) -> str:
        if self.model.key == LEGACY_MODEL_KEY:
            return self.gallery_id
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.model.name}.{self.model.version}")
        return f"{self.gallery_id}.{slug}"


class IndexSet:
    def __init__(self, *, directory: Path, backend: str) -> None:
        self.directory = directory
        self.backend = backend
        self._open: dict[str, tuple[VectorIndex, float]] = {}
        self._lock = threading.RLock()

    def path(self, slot: IndexSlot) -> Path:
        return self._file(slot.name)

    def _file(self, name: str) -> Path:
        return index_file(self.backend, self.directory / name)

    def _mtime(self, name: str) -> float:
        try:
            return self._file(name).stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0

    def get(self, slot: IndexSlot) -> VectorIndex:
        """The slot's index, reloaded when its file changed since we last read it."""
        return self._get(slot.name, slot.model.dimension)

    def _get(self, name: str, dimension: int | None) -> VectorIndex:
        with self._lock:
            cached = self._open.get(name)
            mtime = self._mtime(name)
            if cached is None or cached[1] != mtime:
                self.directory.mkdir(parents=True, exist_ok=True)
                index = open_index(self.backend, self.directory / name, dimension)
                self._open[name] = (index, mtime)
                return index
            return cached[0]

    @contextmanager
    def _exclusive(self, name: str, dimension: int | None) -> Iterator[VectorIndex]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.directory / f"{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                index = self._get(name, dimension)
                yield index
                index.save()
                self._open[name] = (index, self._mtime(name))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, slot: IndexSlot, ids: Sequence[int], vectors: NDArray[np.float32]) -> None:
        if not len(ids):
            return
        with self._exclusive(slot.name, slot.model.dimension) as index:
            index.add(np.asarray(ids, dtype=np.int64), vectors)

    def remove(self, gallery_id: str, ids: Sequence[int]) -> int:
        """Remove ``ids`` from every index file of the gallery (its model's, and any other
        model's that a migration left or is building) and save each: the saved files no
        longer hold the vectors' bytes. Returns how many vectors were removed in all."""
        removed = 0
        for name in self._names_of(gallery_id):
            # dimension None: the file exists, and says its own dimension
            with self._exclusive(name, None) as index:
                removed += index.remove(np.asarray(ids, dtype=np.int64))
        return removed

    def _names_of(self, gallery_id: str) -> list[str]:
        """The slot names of every index file of ``gallery_id`` on disk."""
        if not self.directory.is_dir():
            return []
        suffix = self._file("x").name[1:]
        names = []
        for path in sorted(self.directory.glob(f"{gallery_id}*{suffix}")):
            name = path.name[: -len(suffix)]
            if name == gallery_id or name.startswith(f"{gallery_id}."):
                names.append(name)
        return names

    def replace_all(
        self, slot: IndexSlot, ids: Sequence[int], vectors: NDArray[np.float32]
    ) -> None:
        with self._exclusive(slot.name, slot.model.dimension) as index:
            index.clear()
            if len(ids):
                index.add(np.asarray(ids, dtype=np.int64), vectors)

    def drop(self, slot: IndexSlot) -> None:
        """Delete the slot's file (the old model's index after a migration's swap)."""
        with self._lock:
            self._open.pop(slot.name, None)
            self.path(slot).unlink(missing_ok=True)
            (self.directory / f"{slot.name}.lock").unlink(missing_ok=True)

    def drop_others(self, keep: IndexSlot) -> list[str]:
        """Delete every index file of ``keep``'s gallery but ``keep``'s own (what a model
        migration leaves: the old model's file, or a crash's before it was deleted). Returns
        the slot names dropped."""
        dropped = [n for n in self._names_of(keep.gallery_id) if n != keep.name]
        with self._lock:
            for name in dropped:
                self._open.pop(name, None)
                self._file(name).unlink(missing_ok=True)
                (self.directory / f"{name}.lock").unlink(missing_ok=True)
        return dropped

    def search(self, slot: IndexSlot, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        index = self.get(slot)
        if len(index) == 0:
            return [[] for _ in range(len(queries))]
        return index.search(queries, k)

    def size(self, slot: IndexSlot) -> int:
        return len(self.get(slot))
