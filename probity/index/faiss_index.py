"""``FaissIndex``: the embedded production backend, FAISS ``IndexIDMap2(IndexFlatIP)``.

Why flat and not an approximate graph (HNSW): a flat index is exact (same answers as
``ExactIndex``) and supports physical removal: ``remove_ids`` shifts the following vectors down
over the removed one, so after erasure and ``save()`` the template's bytes are in neither the
index nor its file. HNSW cannot remove vectors, only mark them deleted, which would leave an
erased person's template on disk. Flat search costs O(n * dimension) per query (tens of ms at
1M x 128-d on two cores, see ``bench/index_search.py``); memory is about
n * (4 * dimension + 8) bytes plus FAISS's id hash map (IndexIDMap2's reverse map).

File format: FAISS's own serialisation (``faiss.serialize_index``), conventionally ``.faiss``.
``faiss`` is imported only when a ``FaissIndex`` is built, so importing ``probity.index`` stays
cheap.

Memory caveat: removal compacts the live vectors, but freed heap memory is not scrubbed (the
last row's old slot may keep its bytes until reused). At-rest protection comes from
``save()`` rewriting the file and from crypto-shredding of the stored templates.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.errors import IntegrityError
from probity.index.base import Hit
from probity.index.files import atomic_write_bytes
from probity.index.vectors import (
    IdsLike,
    check_batch,
    check_dimension,
    check_ids,
    check_k,
    clip_similarity,
    normalise,
)

__all__ = ["FaissIndex"]


def _faiss() -> Any:
    import faiss

    return faiss


class FaissIndex:
    """Exact cosine-similarity search with FAISS over L2-normalised float32 vectors.

    ``path`` is the index file (conventionally ``<stem>.faiss``); it is loaded if it exists,
    and written by ``save()``. Thread-safe: one re-entrant lock guards every call into FAISS,
    because FAISS's add and remove are not safe against concurrent searches. A search still
    uses FAISS's own OpenMP threads (BLAS for batches of 20+ queries).

    Trade-off: ``remove`` costs O(n) (it scans and compacts the storage, then rebuilds the id
    map), and an ``add`` that replaces existing ids pays one such removal; adding new ids is
    amortised O(1) each plus an O(n) presence check per call, so batch your adds.
    """

    def __init__(self, path: Path, dimension: int | None) -> None:
        """``dimension`` None: take it from the existing file (an erasure opening an index
        of a model it does not otherwise know)."""
        self._path = Path(path)
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._faiss = _faiss()
        if dimension is None:
            self._dimension = 0
            self._index: Any = self._load()
            self._dimension = int(self._index.d)
            return
        self._dimension = check_dimension(dimension)
        self._index = self._load() if self._path.exists() else self._empty()

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def path(self) -> Path:
        """The index file."""
        return self._path

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    def add(self, ids: IdsLike, vectors: NDArray[np.float32]) -> None:
        """Add vectors (n, dimension) under ids (n,); an id already present is replaced.

        Vectors are normalised to unit length on the way in. Raises ``InvalidInput`` for a
        wrong shape, a zero or non-finite row, a negative id, or an id repeated in the call.
        """
        new_ids, new_vectors = check_batch(ids, vectors, self._dimension)
        if new_ids.size == 0:
            return
        with self._lock:
            if self._index.ntotal:
                present = new_ids[np.isin(new_ids, self._id_view())]
                if present.size:
                    self._remove_locked(present)
            self._index.add_with_ids(new_vectors, new_ids)

    def remove(self, ids: IdsLike) -> int:
        """Remove these ids physically; returns how many were present (absent ids are ignored).

        FAISS's flat storage is compacted: the following vectors move down over the removed
        ones, so the removed bytes are gone from the index, and from the file after ``save()``.
        """
        gone = check_ids(ids, unique=False)
        if gone.size == 0:
            return 0
        with self._lock:
            if self._index.ntotal == 0:
                return 0
            present = np.unique(gone[np.isin(gone, self._id_view())])
            if present.size == 0:
                # IndexIDMap2.remove_ids rebuilds its whole reverse map even when nothing
                # matches, so skip the call when we already know the answer.
                return 0
            return self._remove_locked(present)

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row, up to ``k`` hits, highest cosine similarity first.

        Queries are normalised like stored vectors. ``k`` is capped at the index size, so a
        huge ``k`` does not allocate a huge result.
        """
        k = check_k(k)
        normalised = normalise(queries, self._dimension, what="queries")
        with self._lock:
            n = int(self._index.ntotal)
            if n == 0 or normalised.shape[0] == 0:
                return [[] for _ in range(normalised.shape[0])]
            scores, labels = self._index.search(normalised, min(k, n))
        return [
            [
                Hit(id=int(i), similarity=clip_similarity(s))
                for i, s in zip(row_ids.tolist(), row_scores.tolist(), strict=True)
                if i >= 0
            ]
            for row_ids, row_scores in zip(labels, scores, strict=True)
        ]

    def ids(self) -> NDArray[np.int64]:
        """Every id held (a copy), in storage order."""
        with self._lock:
            result: NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map)
            return result.astype(np.int64, copy=False)

    def clear(self) -> None:
        """Remove everything (in memory; call ``save()`` to empty the file too).

        A fresh FAISS index replaces the old one, so its storage is released, not just emptied.
        """
        with self._lock:
            self._index = self._empty()

    def save(self) -> None:
        """Write the index to its file atomically (temp file, fsync, rename, fsync directory).

        The parent directory is created (mode 0700) if missing. Serialisation (a copy of the
        index in memory, ~0.5 GB at 1M x 128-d) happens under the lock; the disk write does
        not, so searches wait only for the copy. Concurrent saves are serialised, in order.
        """
        with self._save_lock:
            with self._lock:
                data: NDArray[np.uint8] = self._faiss.serialize_index(self._index)
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_bytes(self._path, data.data)

    def _empty(self) -> Any:
        faiss = self._faiss
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self._dimension))

    def _id_view(self) -> NDArray[np.int64]:
        # A zero-copy view of FAISS's id array; valid only while the lock is held.
        id_map = self._index.id_map
        view: NDArray[np.int64] = self._faiss.rev_swig_ptr(id_map.data(), id_map.size())
        return view

    def _remove_locked(self, ids: NDArray[np.int64]) -> int:
        faiss = self._faiss
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # The selector keeps a raw pointer into `ids`, which stays alive for this call.
        selector = faiss.IDSelectorBatch(ids.shape[0], faiss.swig_ptr(ids))
        return int(self._index.remove_ids(selector))

    def _load(self) -> Any:
        faiss = self._faiss
        try:
            data = np.fromfile(self._path, dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except (OSError, RuntimeError, ValueError) as error:
            raise IntegrityError(
                f"index file {self._path} is unreadable ({error}); rebuild the index"
            ) from error
        if not isinstance(index, faiss.IndexIDMap2) or not isinstance(
            faiss.downcast_index(index.index), faiss.IndexFlatIP
        ):
            raise IntegrityError(
                f"index file {self._path} holds a {type(index).__name__}, not an "
                "IndexIDMap2(IndexFlatIP); rebuild the index"
            )
        if self._dimension and int(index.d) != self._dimension:
            raise IntegrityError(
                f"index file {self._path} holds dimension {index.d} vectors, "
                f"expected {self._dimension}; rebuild the index"
            )
        return index
