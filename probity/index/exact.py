"""``ExactIndex``: the numpy reference backend. Brute-force, exact, and simple enough to trust.

Every other backend is checked against this one (the contract test compares top-10 lists).
Search cost is one matrix product over the whole gallery: O(n * dimension) per query, about
0.5 GB of memory traffic per query at one million 128-d templates. Memory is
n * (4 * dimension + 8) bytes (0.52 GB at 1M x 128-d).

File format: an uncompressed ``.npz`` (numpy zip) with two arrays, ``ids`` (int64, n) and
``vectors`` (float32, n x dimension, already normalised), sealed in the envelope of
``probity.index.files`` (AES-256-GCM under the index key of the current KEK epoch; the header
holds the dimension, count and ``applied_seq``). Every save rewrites the whole file, so a
removed vector is gone from the file after the next ``save()``; a plain ``.npz`` (written
before sealing), another slot's file or one sealed under a destroyed epoch raises
``IndexFileUnreadable``. Loading holds the decrypted ``.npz`` and a copy of it while numpy
reads the arrays out (about twice the file size, transiently): simple over lean, as befits the
reference backend.
"""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

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
    clip_similarity,
    normalise,
)

__all__ = ["ExactIndex"]

BACKEND = "exact"

# Bound the (queries x gallery) score matrix of one search block to about 64 MiB of float32.
_SCORE_BLOCK_ELEMENTS = 16 * 1024 * 1024


def _frozen(array: NDArray[np.generic]) -> None:
    # Arrays are replaced, never modified in place: a search can run on a snapshot without the
    # lock while another thread adds or removes.
    array.flags.writeable = False


class ExactIndex:
    """Exact cosine-similarity search over L2-normalised float32 vectors held in numpy arrays.

    ``path`` is the index file (conventionally ``<stem>.npz``); it is loaded if it exists
    (unsealed with ``seal``), and written by ``save()`` (sealed under ``seal.current()``).
    Thread-safe: mutations and saves are serialised by a lock; searches take a consistent
    snapshot under the lock and then run without it.

    Trade-off: adding or removing copies the arrays (O(n) per call), so enrol in batches where
    possible; in exchange a search never sees a half-applied change and removal is physical.
    """

    def __init__(self, path: Path, dimension: int | None, seal: IndexSeal) -> None:
        """``dimension`` None: take it from the existing file's header. Raises
        ``IndexFileUnreadable`` for a file that cannot be opened (see ``read_sealed``) or
        holds another dimension."""
        self._path = Path(path)
        self._seal = seal
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._applied_seq = 0
        self._dimension = 0 if dimension is None else check_dimension(dimension)
        self._ids: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._vectors: NDArray[np.float32] = np.empty((0, self._dimension), dtype=np.float32)
        if dimension is None or self._path.exists():
            self._load()
        _frozen(self._ids)
        _frozen(self._vectors)

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def path(self) -> Path:
        """The index file."""
        return self._path

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: IdsLike, vectors: NDArray[np.float32]) -> None:
        """Add vectors (n, dimension) under ids (n,); an id already present is replaced.

        Vectors are normalised to unit length on the way in. Raises ``InvalidInput`` for a
        wrong shape, a zero or non-finite row, a negative id, or an id repeated in the call.
        """
        new_ids, new_vectors = check_batch(ids, vectors, self._dimension)
        if new_ids.size == 0:
            return
        with self._lock:
            keep = ~np.isin(self._ids, new_ids)
            ids_out = np.concatenate([self._ids[keep], new_ids])
            vectors_out = np.concatenate([self._vectors[keep], new_vectors])
            _frozen(ids_out)
            _frozen(vectors_out)
            self._ids, self._vectors = ids_out, vectors_out

    def remove(self, ids: IdsLike) -> int:
        """Remove these ids physically (the arrays are rebuilt without them); returns how many
        were present. Ids that are absent are ignored."""
        gone = check_ids(ids, unique=False)
        if gone.size == 0:
            return 0
        with self._lock:
            hit = np.isin(self._ids, gone)
            count = int(hit.sum())
            if count:
                keep = ~hit
                ids_out = self._ids[keep]
                vectors_out = self._vectors[keep]
                _frozen(ids_out)
                _frozen(vectors_out)
                self._ids, self._vectors = ids_out, vectors_out
            return count

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row, up to ``k`` hits, highest cosine similarity first.

        Queries are normalised like stored vectors. Cost: one (queries x n) matrix product,
        computed in blocks of at most ~64 MiB of scores, plus a partial sort (argpartition)
        per query, so O(n) rather than O(n log n) for the ranking.
        """
        k = check_k(k)
        normalised = normalise(queries, self._dimension, what="queries")
        with self._lock:
            ids, vectors = self._ids, self._vectors
        n = ids.shape[0]
        if n == 0:
            return [[] for _ in range(normalised.shape[0])]
        take = min(k, n)
        block = max(1, _SCORE_BLOCK_ELEMENTS // n)
        results: list[list[Hit]] = []
        for start in range(0, normalised.shape[0], block):
            scores = normalised[start : start + block] @ vectors.T
            if take < n:
                # The `take` largest scores end up in the last `take` columns (unordered).
                top = np.argpartition(scores, n - take, axis=1)[:, n - take :]
            else:
                top = np.broadcast_to(np.arange(n), scores.shape)
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            ranked = np.take_along_axis(top, order, axis=1)
            ranked_scores = np.take_along_axis(top_scores, order, axis=1)
            for row_ids, row_scores in zip(ids[ranked], ranked_scores, strict=True):
                results.append(
                    [
                        Hit(id=int(i), similarity=clip_similarity(s))
                        for i, s in zip(row_ids.tolist(), row_scores.tolist(), strict=True)
                    ]
                )
        return results

    def ids(self) -> NDArray[np.int64]:
        """Every id held (a copy), in insertion order."""
        with self._lock:
            return self._ids.copy()

    def clear(self) -> None:
        """Remove everything and reset ``applied_seq`` to 0 (in memory; call ``save()`` to
        empty the file too): an emptied index holds the effect of no change."""
        with self._lock:
            ids_out = np.empty(0, dtype=np.int64)
            vectors_out = np.empty((0, self._dimension), dtype=np.float32)
            _frozen(ids_out)
            _frozen(vectors_out)
            self._ids, self._vectors = ids_out, vectors_out
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

        The parent directory is created (mode 0700) if missing. Concurrent saves are serialised
        and each writes a consistent snapshot (arrays and seq taken together under the lock);
        searches and mutations are not blocked while the file is written.
        """
        with self._save_lock:
            with self._lock:
                ids, vectors, applied_seq = self._ids, self._vectors, self._applied_seq
            buffer = io.BytesIO()
            # Uncompressed on purpose: saving 0.5 GB stays I/O-bound, not CPU-bound.
            np.savez(buffer, ids=ids, vectors=vectors)
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_sealed(
                self._path,
                buffer.getbuffer(),
                seal=self._seal,
                applied_seq=applied_seq,
                backend=BACKEND,
                dimension=self._dimension,
                count=int(ids.shape[0]),
            )

    def _load(self) -> None:
        payload, header = read_sealed(self._path, seal=self._seal, backend=BACKEND)
        if self._dimension and header.dimension != self._dimension:
            raise self._unreadable(
                f"holds dimension {header.dimension} vectors, expected {self._dimension}"
            )
        archive_bytes = io.BytesIO(payload.data)
        del payload
        try:
            with np.load(archive_bytes, allow_pickle=False) as archive:
                ids = np.asarray(archive["ids"])
                vectors = np.asarray(archive["vectors"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise self._unreadable(f"holds no readable arrays ({error})") from error
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise self._unreadable("holds malformed ids")
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
            raise self._unreadable("holds malformed vectors")
        if vectors.shape[1] != header.dimension or ids.shape[0] != header.count:
            raise self._unreadable("holds arrays that do not match its header")
        self._dimension = check_dimension(header.dimension)
        self._ids = np.ascontiguousarray(ids)
        self._vectors = np.ascontiguousarray(vectors)
        self._applied_seq = header.applied_seq

    def _unreadable(self, reason: str) -> IndexFileUnreadable:
        return IndexFileUnreadable(f"index file {self._path} {reason}; rebuild the index")
