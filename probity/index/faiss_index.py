"""``FaissIndex``: the embedded production backend, FAISS ``IndexIDMap2(IndexFlatIP)``.

Why flat and not an approximate graph (HNSW): a flat index is exact (same answers as
``ExactIndex``) and supports physical removal: ``remove_ids`` shifts the following vectors down
over the removed one, so after erasure and ``save()`` the template's bytes are in neither the
index nor its file. HNSW cannot remove vectors, only mark them deleted, which would leave an
erased person's template on disk. Flat search costs O(n * dimension) per query (tens of ms at
1M x 128-d on two cores, see ``bench/index_search.py``); memory is about
n * (4 * dimension + 8) bytes plus FAISS's id hash map (IndexIDMap2's reverse map).

File format: FAISS's own serialisation (``faiss.serialize_index``) sealed in the envelope of
``probity.index.files`` (AES-256-GCM under the index key of the current KEK epoch, header with
the dimension, count and ``applied_seq``), conventionally ``.faiss``. A plain FAISS file
(written before sealing), another slot's file or one sealed under a destroyed epoch raises
``IndexFileUnreadable``: the index is rebuilt from the database. Cost of sealing, measured in
``bench/index_sealing.py``: small next to serialisation and fsync; peak memory is unchanged
(the serialised copy, plus one 16 MiB chunk). ``faiss`` is imported only when a
``FaissIndex`` is built, so importing ``probity.index`` stays cheap.

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

from probity.index.base import Hit
from probity.index.files import read_sealed, write_sealed
from probity.index.sealing import IndexFileUnreadable, IndexSeal
from probity.index.vectors import (
    IdsLike,
    check_batch,
    check_dimension,
    check_ids,
    check_k,
    normalise,
    to_hits,
)

__all__ = ["FaissIndex"]

BACKEND = "faiss"


def _faiss() -> Any:
    import faiss

    return faiss


class FaissIndex:
    """Exact cosine-similarity search with FAISS over L2-normalised float32 vectors.

    ``path`` is the index file (conventionally ``<stem>.faiss``); it is loaded if it exists
    (unsealed with ``seal``), and written by ``save()`` (sealed under ``seal.current()``).
    Thread-safe: one re-entrant lock guards every call into FAISS, because FAISS's add and
    remove are not safe against concurrent searches. A search still uses FAISS's own OpenMP
    threads (BLAS for batches of 20+ queries).

    Trade-off: ``remove`` costs O(n) (it scans and compacts the storage, then rebuilds the id
    map), and an ``add`` that replaces existing ids pays one such removal; adding new ids is
    amortised O(1) each plus an O(n) presence check per call, so batch your adds.
    """

    def __init__(self, path: Path, dimension: int | None, seal: IndexSeal) -> None:
        """``dimension`` None: take it from the existing file's header (an erasure opening
        an index of a model it does not otherwise know). Raises ``IndexFileUnreadable`` for a
        file that cannot be opened (see ``read_sealed``) or holds another dimension."""
        self._path = Path(path)
        self._seal = seal
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._faiss = _faiss()
        self._applied_seq = 0
        self._dimension = 0 if dimension is None else check_dimension(dimension)
        if dimension is None or self._path.exists():
            self._index: Any = self._load()
        else:
            self._index = self._empty()

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
        return to_hits(labels, scores)

    def ids(self) -> NDArray[np.int64]:
        """Every id held (a copy), in storage order."""
        with self._lock:
            result: NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map)
            return result.astype(np.int64, copy=False)

    def clear(self) -> None:
        """Remove everything and reset ``applied_seq`` to 0 (in memory; call ``save()`` to
        empty the file too): an emptied index holds the effect of no change.

        A fresh FAISS index replaces the old one, so its storage is released, not just emptied.
        """
        with self._lock:
            self._index = self._empty()
            self._applied_seq = 0

    @property
    def applied_seq(self) -> int:
        """The last template-change seq this index holds (0: none); see ``VectorIndex``."""
        with self._lock:
            return self._applied_seq

    def mark_applied(self, seq: int) -> None:
        """Record that every change up to ``seq`` is applied (saved by the next ``save()``).
        A lower ``seq`` than the current one is ignored: the number never moves backwards."""
        with self._lock:
            self._applied_seq = max(self._applied_seq, int(seq))

    def save(self) -> None:
        """Seal the index and its ``applied_seq`` into its file atomically (temp file, fsync,
        rename, fsync directory), under the index key ``seal.current()`` gives.

        The parent directory is created (mode 0700) if missing. Serialisation (a copy of the
        index in memory, ~0.5 GB at 1M x 128-d) and the reading of ``applied_seq`` happen
        under the lock, so the two describe the same state; encryption and the disk write do
        not, so searches wait only for the copy. Concurrent saves are serialised, in order.
        """
        with self._save_lock:
            with self._lock:
                data: NDArray[np.uint8] = self._faiss.serialize_index(self._index)
                count = int(self._index.ntotal)
                applied_seq = self._applied_seq
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_sealed(
                self._path,
                data.data,
                seal=self._seal,
                applied_seq=applied_seq,
                backend=BACKEND,
                dimension=self._dimension,
                count=count,
            )

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
        data, header = read_sealed(self._path, seal=self._seal, backend=BACKEND)
        if self._dimension and header.dimension != self._dimension:
            raise self._unreadable(
                f"holds dimension {header.dimension} vectors, expected {self._dimension}"
            )
        try:
            index = faiss.deserialize_index(data)
        except (RuntimeError, ValueError) as error:
            raise self._unreadable(f"holds no FAISS index ({error})") from error
        del data  # the serialised copy: as large as the index itself
        if not isinstance(index, faiss.IndexIDMap2) or not isinstance(
            faiss.downcast_index(index.index), faiss.IndexFlatIP
        ):
            raise self._unreadable(
                f"holds a {type(index).__name__}, not an IndexIDMap2(IndexFlatIP)"
            )
        if int(index.d) != header.dimension or int(index.ntotal) != header.count:
            raise self._unreadable("holds an index that does not match its header")
        self._dimension = check_dimension(header.dimension)
        self._applied_seq = header.applied_seq
        return index

    def _unreadable(self, reason: str) -> IndexFileUnreadable:
        return IndexFileUnreadable(f"index file {self._path} {reason}; rebuild the index")
