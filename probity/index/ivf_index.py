"""``IvfIndex``: approximate search for large galleries, saved in segments (backend "ivf").

**What it is.** Below ``FLAT_MAX`` vectors it is exact: FAISS ``IndexIDMap2(IndexFlatIP)``,
the same answers as ``FaissIndex``. When a gallery grows past ``FLAT_MAX`` it becomes a FAISS
inverted-file index with 8-bit scalar quantisation (``IndexIVFScalarQuantizer``, QT_8bit,
inner product, ``by_residual=False``): its coarse quantizer (``nlist`` centroids) and the
quantiser's ranges are trained on the gallery's own templates, a query scans the ``nprobe``
lists nearest to it, and a vector costs 128 bytes of codes plus its 8-byte id. The ranking
the product shows stays exact: the search service asks for ``k * OVERFETCH`` candidates and
re-scores them from the sealed templates (``services/search.py``), so the index only has to
put the right people among its candidates. The index is retrained (a full re-layout, sealed
anew) when the gallery has grown ``RETRAIN_GROWTH`` times past the size it was trained at.
That retraining is built *beside* the live index, in a background thread, and swapped in
when ready (``_retrain``): at 1M it takes about a minute on two cores, and searches and
enrolments go on against the old layout meanwhile; changes made during it are replayed onto
the new layout before the swap. (The first training, when a flat index passes
``FLAT_MAX``, is inline: about a second at 50,000 vectors.)

Parameters by size (``choose_params``; measured in ``bench/ivf_index.py``, recorded in the
index manifest so a file says how it was built):

    nlist  = 4 * sqrt(n) (at least 256), the usual FAISS rule: ~4,000 at 1M, ~12,600 at 10M
    nprobe = nlist / 6, between 64 and NPROBE_MAX (1,024): 666 at 1M, 1,024 at 10M
             (see NPROBE_MAX for the measurement that keeps the cap)

``by_residual=False`` because then a vector's code does not depend on its list: segments can
be rewritten, and lists re-laid-out after a retraining, from the codes alone. It costs a
little precision, which the exact re-scoring absorbs.

**The fast stage.** Scanning 128-byte codes is bound by memory bandwidth: at 10M a query
read about 104 MB and took 12.2 ms. So a single query first scans a 4-bit product-quantised
mirror of the same lists (``ivf_fast.FastStage``, 16 bytes a code, FAISS fast-scan), takes
``REFINE`` times the asked-for count from it, and re-scores those with their SQ8 codes; the
search service then re-scores the final candidates exactly, as before. The mirror is derived
in memory from the SQ8 codes whenever a layout is loaded or installed (inline up to
``FAST_INLINE_MAX`` vectors, in a background thread above, the SQ8 scan answering until it is
ready) and is never stored, so the segment format is unchanged.

**Physical removal.** ``remove`` moves the last entry of each affected inverted list over the
removed one and shrinks the list: the removed codes are gone from the index, and from the
files once ``save`` has rewritten the segments that held them (HNSW, by contrast, can only
mark a vector deleted).

**Saves that do not grow with the gallery.** The index is stored as one small *manifest*
file, ``<stem>.ivf``, and *segment* files ``<stem>.ivf-<token>-<n>.seg`` beside it:

- the manifest (sealed under the index key of the current KEK epoch, ``IndexSeal.current``)
  holds the parameters, ``applied_seq``, the count, and for every segment its file name,
  which inverted lists it holds, and its own random 256-bit key;
- each segment holds the ids and codes of a contiguous range of inverted lists (about
  ``SEGMENT_VECTORS`` vectors when trained), sealed under its own key; one more file holds
  the trained, empty index (centroids and quantiser ranges).

A ``save`` writes only the segments whose lists changed since the last save (an enrolment:
the one or two segments its templates fell into; an erasure: those that held the erased
vectors), each under a **fresh** key and a new file name, then the manifest, atomically, then
deletes the files the manifest no longer names. Unchanged segments keep their file and key;
their keys are simply re-wrapped in the new manifest, under the new epoch. So after an
erasure (which rotates the KEK and destroys the old one): the erased vectors are in no
current file; an old copy of a rewritten segment cannot be opened (its key was only ever in
manifests sealed under destroyed epochs); an old copy of an unchanged segment opens only with
a key the current manifest holds, and it holds no erased vector.

A crash at any point leaves either the old manifest (and the new segment files as orphans,
deleted by the next save or open) or the new one: the manifest's atomic rename is the commit.

Memory: codes + ids (136 B a vector) + a sorted id -> list map (12 B) + the centroids,
about 150 B a vector at 10M, and the fast stage's 16 B code and 8 B id (about 25 B with its
block padding). Trade-offs: ``remove`` costs O(n) for the map (a numpy delete),
erasures are rare; presence checks on ``add`` are O(log n) (a binary search, not the
``np.isin`` over every id that cost 7.3 s at 10M).
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.errors import IntegrityError
from probity.index.base import Hit
from probity.index.files import fsync_directory, read_sealed, write_sealed
from probity.index.ivf_fast import REFINE, REFINE_MIN, FastStage
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

__all__ = [
    "FLAT_MAX",
    "IvfIndex",
    "IvfParams",
    "choose_params",
    "decrypted_payloads",
    "segment_files",
]

BACKEND = "ivf"
SEGMENT_BACKEND = "ivf-segment"

FLAT_MAX = 50_000
"""Up to this many vectors the index is flat and exact; past it, IVF-SQ8. A flat search of
50,000 x 128-d takes about 2 ms on two cores, about what IVF needs at that size, so exactness
costs nothing below it (bench/ivf_index.py)."""

RETRAIN_GROWTH = 4
"""Retrain (a full re-layout) once the gallery holds this many times the vectors it was
trained on: the centroids then describe the data again, and the segment sizes stay bounded."""

SEGMENT_VECTORS = 16_384
"""Target vectors per segment at training time (about 2.2 MB of codes and ids): a save after
one enrolment rewrites about this much, however large the gallery. Segments grow up to
``RETRAIN_GROWTH`` times this before the next retraining."""

NPROBE_MAX = 1536
"""The most lists one query scans. Measured at 10M through the product (a 10M home the
loader filled, nlist 12,648, the 4-bit fast stage with FAISS fast-scan implementation 14, 400
probes, each a fresh template of an enrolled person; top-1 identical to exact search over
every template after the exact re-scoring; bench/results/scale-10m-fast.json, "sweep"):

    nprobe                          1,024    1,536    2,048
    IndexSet.search k = 10, p50     5.5      6.9      8.1 ms
    p95                             6.7      9.3      10.2 ms
    top-1 identical to exact        98.5     99.75    99.75 %

1,024 misses the issue's 99.5 % top-1; 1,536 is the smallest of these that meets it. The
SQ8 scan alone took 12.2 ms at 1,024 (FAISS, the saved 10M index), which is why a single
query scans the fast stage first. The choice is recorded in the index file (``IvfParams``):
an index trained before keeps its nprobe until it is retrained."""

MAX_SEGMENTS = 4096
TRAIN_POINTS_PER_LIST = 64
"""k-means training sample: this many vectors per centroid (FAISS warns below 39)."""

_PENDING_MAX = 65_536  # ids added since the id map was last merged (a dict, O(1) each)

FAST_INLINE_MAX = 200_000
"""Up to this many vectors the fast stage (``ivf_fast``) is built inline, under the lock, when
an SQ8 layout is loaded or installed (about 0.6 s at this size); above it, in a background
thread, ``FAST_CHUNK_LISTS`` lists at a time under the lock, so that a 10M index opens in
seconds and answers with the SQ8 scan until the fast stage is ready (about a minute)."""

FAST_CHUNK_LISTS = 64
"""Lists the background build mirrors each time it takes the lock (about 50,000 vectors at
10M, some 20-40 ms): what a concurrent search may wait, at most, while it runs."""

RETRAIN_HOOK: Any = None
"""Tests only: called (no arguments) by the retraining thread once the new layout is built
and before it takes the lock to swap it in, so a test can act while a retraining is in
flight. None in production."""


@dataclass(slots=True)
class _Layout:
    """A trained IVF index and its id -> list map, built by ``_build`` (not yet in use)."""

    index: Any
    params: IvfParams
    map_ids: NDArray[np.int64]
    map_lists: NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class IvfParams:
    """How an IVF index was built (kept in its manifest)."""

    nlist: int
    nprobe: int
    trained_on: (
        int  # vectors it was trained for: the gallery's size then (or a bulk build's, ``reserve``)
    )
    segments: int  # segment count: lists are split into this many contiguous ranges


def choose_params(n: int) -> IvfParams:
    """The parameters for training on ``n`` vectors (see the module docstring)."""
    nlist = max(256, round(4 * math.sqrt(n) / 8) * 8)
    nprobe = int(min(NPROBE_MAX, max(64, nlist // 6)))
    segments = int(min(MAX_SEGMENTS, nlist, max(1, math.ceil(n / SEGMENT_VECTORS))))
    return IvfParams(nlist=nlist, nprobe=nprobe, trained_on=int(n), segments=segments)


def _faiss() -> Any:
    import faiss

    return faiss


class _KeySeal:
    """An ``IndexSeal`` of one fixed key (a segment's own key), epoch 0."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def current(self) -> tuple[int, bytes]:
        return 0, self._key

    def key(self, epoch: int) -> bytes:
        if epoch != 0:
            raise IntegrityError("a segment is sealed under its own key, epoch 0")
        return self._key


@dataclass(slots=True)
class _Segment:
    file: str  # file name in the index directory
    key: bytes  # its own AES-256 key (kept in the sealed manifest only)
    lo: int  # first inverted list it holds (IVF), 0 for the flat segment
    hi: int  # one past the last
    count: int


def segment_files(manifest: Path) -> list[Path]:
    """Every segment file beside ``manifest`` (named after it), referenced or not."""
    prefix = f"{manifest.name}-"
    if not manifest.parent.is_dir():
        return []
    return sorted(
        p
        for p in manifest.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".seg")
    )


class IvfIndex:
    """See the module docstring. Thread-safe: one re-entrant lock guards every call into
    FAISS (its add and remove are not safe against concurrent searches); a save copies the
    changed segments under the lock and encrypts and writes them outside it."""

    def __init__(self, path: Path, dimension: int | None, seal: IndexSeal) -> None:
        self._path = Path(path)
        self._seal = seal
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._faiss = _faiss()
        self._applied_seq = 0
        self._dimension = 0 if dimension is None else check_dimension(dimension)
        self._params: IvfParams | None = None  # None: flat
        self._segments: list[_Segment] = []
        self._trained_file: _Segment | None = None
        self._dirty: set[int] = set()  # segment numbers changed since the last save
        self._relaid = False  # every segment (and the trained file) must be written anew
        self._map_ids: NDArray[np.int64] = np.empty(0, np.int64)  # sorted
        self._map_lists: NDArray[np.int32] = np.empty(0, np.int32)
        self._pending: dict[int, int] = {}  # id -> list, not yet merged into the map
        self._planned = 0  # vectors a bulk build said it will add (``reserve``); 0: none
        self._retraining: threading.Thread | None = None
        self._journal: list[tuple[str, NDArray[np.int64], NDArray[np.float32] | None]] | None
        self._journal = None  # changes made while a retraining is in flight, to replay
        self._generation = 0  # bumped by clear(): a retraining begun before is dropped
        self.on_retrained: Callable[[], None] | None = None
        """Called by the retraining thread, without this index's lock, once a retrained
        layout is live: the ``IndexSet`` saves it then (every file anew), so that it is on
        disk for other processes and the next start, not only once the next change comes."""
        self._fast: FastStage | None = None  # the 4-bit first stage of the live SQ8 layout
        self._fast_thread: threading.Thread | None = None
        if dimension is None or self._path.exists():
            self._load()
        else:
            self._index: Any = self._flat()
            self._relaid = True

    # -- the protocol ---------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def path(self) -> Path:
        return self._path

    @property
    def params(self) -> IvfParams | None:
        """The IVF parameters, or None while the index is flat (exact)."""
        return self._params

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    def add(self, ids: IdsLike, vectors: NDArray[np.float32]) -> None:
        """Add vectors (n, dimension) under ids (n,); an id already present is replaced.
        May convert a flat index to IVF, or retrain an IVF one (a full re-layout)."""
        new_ids, new_vectors = check_batch(ids, vectors, self._dimension)
        if new_ids.size == 0:
            return
        with self._lock:
            if self._journal is not None:
                self._journal.append(("add", new_ids.copy(), new_vectors.copy()))
            present = self._present(new_ids)
            if present.size:
                self._remove_locked(present)
            if self._params is None:
                self._index.add_with_ids(new_vectors, new_ids)
                self._dirty.add(0)
                if int(self._index.ntotal) > FLAT_MAX:
                    self._train(self._flat_vectors())
                return
            lists = self._assign(new_vectors)
            self._index.add_core(
                new_vectors.shape[0],
                self._faiss.swig_ptr(new_vectors),
                self._faiss.swig_ptr(new_ids),
                self._faiss.swig_ptr(lists),
            )
            if self._fast is not None:
                self._fast.add(lists, new_vectors)
            if new_ids.shape[0] > _PENDING_MAX:  # a bulk batch: straight into the map
                self._merge_pending(new_ids, lists.astype(np.int32))
                segments = lists * self._params.segments // self._params.nlist
                self._dirty.update(np.unique(segments).tolist())
            else:
                for i, lst in zip(new_ids.tolist(), lists.tolist(), strict=True):
                    self._pending[i] = lst
                    self._dirty.add(self._segment_of(lst))
            if len(self._pending) > _PENDING_MAX:
                self._merge_pending()
            if int(self._index.ntotal) > RETRAIN_GROWTH * self._params.trained_on:
                self._start_retrain()

    @property
    def retraining(self) -> bool:
        """Whether a retraining is being built in a background thread now."""
        thread = self._retraining
        return thread is not None and thread.is_alive()

    def wait_for_retraining(self, timeout: float | None = None) -> bool:
        """Wait for a retraining in flight to be swapped in (tests, benches, a bulk load
        that wants the final layout saved). True if none is in flight any more."""
        thread = self._retraining
        if thread is not None:
            thread.join(timeout)
        return self._retraining is None or not self._retraining.is_alive()

    def reserve(self, total: int) -> int:
        """Say that the index is about to hold about ``total`` vectors, added in batches (a
        first build, a rebuild). Returns how many vectors the caller should put in its first
        batch, 0 for no preference.

        Why: built batch by batch, the index would train when it passes ``FLAT_MAX`` and
        retrain at every 4x growth after (a full re-layout each time, 200k, 800k, 3.2M...),
        ending with the parameters of a quarter of its size. Told the total, it trains once,
        on the first batch (a random sample of the whole, if the caller shuffled), with the
        parameters ``choose_params(total)`` gives, and so never retrains during the build.
        The first batch must hold the training sample: ``TRAIN_POINTS_PER_LIST`` vectors a
        list (809,000 at 10M, about 410 MB of float32; the rest of the build then needs
        memory for one batch at a time, not for every vector at once)."""
        with self._lock:
            current = int(self._index.ntotal)
            if total <= FLAT_MAX or self._params is not None or current > 0:
                return 0
            self._planned = int(total)
            return min(int(total), TRAIN_POINTS_PER_LIST * choose_params(total).nlist)

    def remove(self, ids: IdsLike) -> int:
        """Remove these ids physically; returns how many were present."""
        gone = check_ids(ids, unique=False)
        if gone.size == 0:
            return 0
        with self._lock:
            if self._journal is not None:
                self._journal.append(("remove", np.unique(gone), None))
            present = self._present(np.unique(gone))
            if present.size == 0:
                return 0
            return self._remove_locked(present)

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row up to ``k`` hits, best first (approximate once IVF)."""
        k = check_k(k)
        normalised = normalise(queries, self._dimension, what="queries")
        with self._lock:
            n = int(self._index.ntotal)
            if n == 0 or normalised.shape[0] == 0:
                return [[] for _ in range(normalised.shape[0])]
            self._start_deferred_fast()
            if self._params is not None and self._fast is not None and self._fast.ready:
                return [self._search_fast(row[None, :], min(k, n)) for row in normalised]
            if self._params is not None:
                self._index.nprobe = self._params.nprobe
                # One query: split its probed lists across the OpenMP threads (parallel_mode
                # 1) rather than the queries (0, FAISS's default, which leaves one core idle
                # for a single query). Measured at 500k, nprobe 472, 2 cores: p50 2.31 ->
                # 1.37 ms. Batches keep parallelism over queries.
                self._index.parallel_mode = 1 if normalised.shape[0] == 1 else 0
            scores, labels = self._index.search(normalised, min(k, n))
        return to_hits(labels, scores)

    def wait_for_fast_stage(self, timeout: float | None = None) -> bool:
        """Wait for a background build of the fast stage (tests, benches). True once the live
        layout's fast stage answers searches (or the index is flat and needs none). Starts
        one a bulk build deferred, as a search would."""
        with self._lock:
            self._start_deferred_fast()
        thread = self._fast_thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            return self._params is None or (self._fast is not None and self._fast.ready)

    def ids(self) -> NDArray[np.int64]:
        with self._lock:
            if self._params is None:
                out: NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map)
                return out.astype(np.int64, copy=False)
            pending = np.fromiter(self._pending, np.int64, len(self._pending))
            return np.concatenate([self._map_ids, pending])

    def clear(self) -> None:
        """Empty (back to flat) and ``applied_seq`` 0; ``save()`` empties the files too."""
        with self._lock:
            self._index = self._flat()
            self._params = None
            self._segments = []
            self._trained_file = None
            self._map_ids = np.empty(0, np.int64)
            self._map_lists = np.empty(0, np.int32)
            self._pending = {}
            self._planned = 0
            self._applied_seq = 0
            self._relaid = True
            self._generation += 1  # a retraining in flight is dropped
            self._fast = None  # and so is a fast-stage build (it checks this)
            self._journal = None
            self._dirty = set()

    @property
    def applied_seq(self) -> int:
        with self._lock:
            return self._applied_seq

    def mark_applied(self, seq: int) -> None:
        with self._lock:
            self._applied_seq = max(self._applied_seq, int(seq))

    def save(self) -> None:
        """Write the changed segments (fresh keys, new names), then the manifest (atomic
        rename: the commit), then delete the files the manifest no longer names."""
        with self._save_lock:
            with self._lock:
                writes = self._collect_writes()
                manifest = self._manifest()
                count = int(self._index.ntotal)
                applied_seq = self._applied_seq
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                for segment, payload, n in writes:
                    write_sealed(
                        self._path.parent / segment.file,
                        payload,
                        seal=_KeySeal(segment.key),
                        applied_seq=0,
                        backend=SEGMENT_BACKEND,
                        dimension=self._dimension,
                        count=n,
                    )
                write_sealed(
                    self._path,
                    json.dumps(manifest, sort_keys=True).encode(),
                    seal=self._seal,
                    applied_seq=applied_seq,
                    backend=BACKEND,
                    dimension=self._dimension,
                    count=count,
                )
            except BaseException:
                with self._lock:  # written again by the next save
                    self._relaid = True
                raise
            self._delete_unreferenced(
                {s["file"] for s in manifest["segments"]} | _trained(manifest)
            )

    def reload(self) -> bool:
        """Bring this open index up to what its files hold after another process saved
        them, reading only the segments whose files changed. True when done; False when it
        must be opened anew instead: a new layout (a retraining, a first training, a
        clear), a flat index (small: reopening is cheap), or changes of this process not
        saved yet (the caller's reopen then drops them, as it always did).

        Why: the ``IndexSet`` re-opens an index whose manifest changed on disk (a CLI
        enrolment beside a running server). At 10M a full open reads and decrypts about
        1.4 GB of segments, holding the ``IndexSet`` lock meanwhile, and rebuilds the fast
        stage (about 40 s of one core); an enrolment's save changes one or two segments of
        about 2 MB. Everything is read and checked before anything changes: a segment that
        cannot be read raises ``IndexFileUnreadable`` with this index as it was."""
        with self._save_lock, self._lock:
            if self._params is None or self._dirty or self._relaid or self._journal is not None:
                return False
            if self._retraining is not None and self._retraining.is_alive():
                return False
            header, params, segments, trained = self._read_manifest()
            same_layout = (
                params is not None
                and trained == self._trained_file
                and (params.nlist, params.segments) == (self._params.nlist, self._params.segments)
                and len(segments) == len(self._segments)
            )
            if not same_layout:
                return False
            assert params is not None
            changed = [
                n for n, (a, b) in enumerate(zip(self._segments, segments, strict=True)) if a != b
            ]
            code_size = int(self._index.code_size)
            parts = [_unpack_lists(self._read_segment(segments[n]), code_size) for n in changed]
            invlists = self._index.invlists
            total = int(self._index.ntotal)
            for lo, hi, sizes, _, _ in parts:
                total += sum(sizes) - sum(int(invlists.list_size(lst)) for lst in range(lo, hi))
            if total != header.count:
                return False  # not the lists this manifest describes: open it anew
            self._replace_lists(parts)
            self._params, self._segments = params, segments
            self._applied_seq = header.applied_seq
            return True

    def _replace_lists(
        self, parts: list[tuple[int, int, list[int], NDArray[np.int64], NDArray[np.uint8]]]
    ) -> None:
        """Under the lock: make lists ``[lo, hi)`` of each part exactly the part's (SQ8
        lists, fast stage and id -> list map)."""
        faiss, invlists = self._faiss, self._index.invlists
        code_size = int(self._index.code_size)
        # The id -> list map changes only for the lists that changed (one or two of a
        # segment's lists, for an enrolment elsewhere): see ``_remap``. Scanning the whole
        # map instead (which list is each id in?) and sorting it again took about 230 ms
        # at 10M, holding the lock searches wait on.
        gone_ids, new_ids, new_lists = [], [], []
        for lo, hi, sizes, ids, codes in parts:
            start = 0
            for lst, size in zip(range(lo, hi), sizes, strict=True):
                part_ids = np.ascontiguousarray(ids[start : start + size])
                part_codes = np.ascontiguousarray(
                    codes[start * code_size : (start + size) * code_size]
                )
                start += size
                held_ids, held_codes = self._list(lst)
                if np.array_equal(held_ids, part_ids) and np.array_equal(
                    held_codes.reshape(-1), part_codes
                ):
                    continue  # unchanged (a segment holds many lists; one or two changed)
                gone_ids.append(held_ids.copy())  # a view of the list, about to change
                if size:
                    new_ids.append(part_ids.copy())
                    new_lists.append(np.full(size, lst, np.int32))
                self._index.ntotal = int(self._index.ntotal) - int(invlists.list_size(lst))
                invlists.resize(lst, 0)
                if size:
                    invlists.add_entries(
                        lst, size, faiss.swig_ptr(part_ids), faiss.swig_ptr(part_codes)
                    )
                    self._index.ntotal = int(self._index.ntotal) + size
                if self._fast is not None:
                    self._fast.refill(lst)
        if gone_ids or new_ids:
            self._remap(
                np.concatenate([np.empty(0, np.int64), *gone_ids]),
                np.concatenate([np.empty(0, np.int64), *new_ids]),
                np.concatenate([np.empty(0, np.int32), *new_lists]),
            )

    def _remap(
        self, held: NDArray[np.int64], ids: NDArray[np.int64], lists: NDArray[np.int32]
    ) -> None:
        """Under the lock: the lists that held ``held`` now hold ``ids`` (in ``lists``).
        Ids in both keep their map entry, with their (maybe other) list; ids only in
        ``held`` leave the map (one pass over it, only when another process removed some);
        ids only in ``ids`` go to the pending dict, as an ``add`` puts them. So the map is
        not rewritten for another process's enrolment."""
        kept = np.isin(held, ids)
        moved = np.isin(ids, held)
        for i, lst in zip(ids[moved].tolist(), lists[moved].tolist(), strict=True):
            if i in self._pending:
                self._pending[i] = lst
        both = ids[moved]
        in_map = self._in_map(both)
        self._map_lists[np.searchsorted(self._map_ids, both[in_map])] = lists[moved][in_map]
        gone = held[~kept]
        for i in gone.tolist():
            self._pending.pop(i, None)
        gone = gone[self._in_map(gone)]
        if gone.size:
            at = np.searchsorted(self._map_ids, gone)
            self._map_ids = np.delete(self._map_ids, at)
            self._map_lists = np.delete(self._map_lists, at)
        for i, lst in zip(ids[~moved].tolist(), lists[~moved].tolist(), strict=True):
            self._pending[i] = lst
        if len(self._pending) > _PENDING_MAX:
            self._merge_pending()

    # -- internals: structure -------------------------------------------------------------

    def _flat(self) -> Any:
        faiss = self._faiss
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self._dimension))

    def _flat_vectors(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        n = int(self._index.ntotal)
        ids: NDArray[np.int64] = self._faiss.vector_to_array(self._index.id_map).astype(np.int64)
        flat = self._faiss.downcast_index(self._index.index)
        data = self._faiss.rev_swig_ptr(flat.get_xb(), n * self._dimension)
        vectors = np.array(data, dtype=np.float32).reshape(n, self._dimension)
        return ids, vectors

    def _ivf_vectors(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        ids, codes = self._all_codes()
        if ids.shape[0] == 0:
            return ids, np.empty((0, self._dimension), np.float32)
        vectors: NDArray[np.float32] = np.ascontiguousarray(self._index.sq.decode(codes))
        return ids, vectors

    def _all_codes(self) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        parts_i, parts_c = [], []
        for lst in range(self._index.nlist):
            ids, codes = self._list(lst)
            if ids.size:
                parts_i.append(ids.copy())
                parts_c.append(codes.copy())
        if not parts_i:
            return np.empty(0, np.int64), np.empty((0, self._index.code_size), np.uint8)
        return np.concatenate(parts_i), np.concatenate(parts_c)

    def _train(self, data: tuple[NDArray[np.int64], NDArray[np.float32]]) -> None:
        """(Re)build as IVF-SQ8 trained on these vectors, inline; every file is written anew."""
        ids, vectors = data
        planned, self._planned = self._planned, 0
        self._install(self._build(ids, vectors, planned), defer_fast=planned > 0)

    def _start_retrain(self) -> None:
        """Under the lock: start building a retrained layout beside the live one (``_retrain``),
        unless one is in flight. The codes are copied now (a memory copy, about 0.5 s for 4M
        vectors); everything slow happens outside the lock."""
        if self._retraining is not None and self._retraining.is_alive():
            return
        ids, codes = self._all_codes()
        self._journal = []
        generation = self._generation
        thread = threading.Thread(
            target=self._retrain,
            args=(ids, codes, self._index, generation),
            name=f"ivf-retrain-{self._path.name}",
            daemon=True,  # a process that exits mid-way loses nothing: the old layout stays
        )
        self._retraining = thread
        thread.start()

    def _retrain(
        self, ids: NDArray[np.int64], codes: NDArray[np.uint8], old: Any, generation: int
    ) -> None:
        """The retraining thread: decode the copied codes, train and fill a new layout, then,
        under the lock, swap it in and replay the changes made meanwhile (the journal), so
        the new layout holds exactly what the old one holds at that moment. If ``clear()``
        ran meanwhile the result is dropped. The next ``save`` writes every file anew."""
        try:
            vectors: NDArray[np.float32] = np.ascontiguousarray(old.sq.decode(codes))
            del codes
            layout = self._build(ids, vectors, 0)
            del vectors
            if RETRAIN_HOOK is not None:
                RETRAIN_HOOK()
            with self._lock:
                journal, self._journal = self._journal, None
                if generation != self._generation or journal is None:
                    return
                self._install(layout)
                for op, op_ids, op_vectors in journal:
                    if op == "add":
                        assert op_vectors is not None
                        self.add(op_ids, op_vectors)
                    else:
                        self.remove(op_ids)
            if self.on_retrained is not None:
                self.on_retrained()
        finally:
            with self._lock:
                if self._retraining is threading.current_thread():
                    self._journal = None
                    self._retraining = None

    def _build(self, ids: NDArray[np.int64], vectors: NDArray[np.float32], planned: int) -> _Layout:
        """A new IVF-SQ8 index trained on ``vectors`` (for ``planned`` vectors if larger: see
        ``reserve``) and holding them: no state of ``self`` is read or changed but the
        dimension, so a retraining can run it outside the lock."""
        faiss = self._faiss
        params = choose_params(max(ids.shape[0], planned))
        quantizer = faiss.IndexFlatIP(self._dimension)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self._dimension,
            params.nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
            False,  # by_residual: codes independent of their list (see module docstring)
        )
        index.own_fields = True
        quantizer.this.disown()
        sample = min(ids.shape[0], TRAIN_POINTS_PER_LIST * params.nlist)
        rng = np.random.default_rng(ids.shape[0])  # reproducible for the same gallery size
        chosen = rng.choice(ids.shape[0], size=sample, replace=False)
        index.cp.niter = 10
        index.train(np.ascontiguousarray(vectors[np.sort(chosen)]))
        lists = _assign(index, vectors)
        index.add_core(
            vectors.shape[0],
            faiss.swig_ptr(np.ascontiguousarray(vectors)),
            faiss.swig_ptr(np.ascontiguousarray(ids)),
            faiss.swig_ptr(lists),
        )
        order = np.argsort(ids, kind="stable")
        return _Layout(index, params, ids[order].astype(np.int64), lists[order].astype(np.int32))

    def _install(self, layout: _Layout, *, defer_fast: bool = False) -> None:
        """Make ``layout`` the live index (under the lock); every file is written anew.
        ``defer_fast``: a bulk build trained it; its fast stage waits for the first search."""
        self._index = layout.index
        self._params = layout.params
        self._map_ids = layout.map_ids
        self._map_lists = layout.map_lists
        self._pending = {}
        self._segments = []
        self._trained_file = None
        self._relaid = True
        self._dirty = set()
        self._fast = None
        if not defer_fast:
            self._start_fast()

    def _assign(self, vectors: NDArray[np.float32]) -> NDArray[np.int64]:
        return _assign(self._index, vectors)

    # -- internals: the fast stage --------------------------------------------------------

    def _start_deferred_fast(self) -> None:
        """Under the lock, at a search: an SQ8 layout without a fast stage is one a bulk build
        trained (``_install(defer_fast=True)``: a first build's process, ``index rebuild`` or
        a restore, often saves and exits without a search, so the stage is not built beside
        its batches). Start it, always in the background: a search must not wait seconds for
        it, and the SQ8 scan answers meanwhile."""
        if self._params is not None and self._fast is None:
            self._start_fast(inline=False)

    def _start_fast(self, *, inline: bool | None = None) -> None:
        """Under the lock, after an SQ8 layout became live: give it a fast stage, built inline
        when small (``FAST_INLINE_MAX``), else in a background thread (``_build_fast_behind``).
        ``inline`` forces one or the other."""
        stage = FastStage(self._index, self._faiss)
        self._fast = stage
        if inline is None:
            inline = int(self._index.ntotal) <= FAST_INLINE_MAX
        if inline:
            stage.train(stage.training_sample())
            stage.build(stage.nlist)
            return
        thread = threading.Thread(
            target=_build_fast_behind,
            args=(weakref.ref(self), stage),
            name=f"ivf-fast-{self._path.name}",
            daemon=True,  # derived, in memory only: a process that exits loses nothing
        )
        self._fast_thread = thread
        thread.start()

    def _search_fast(self, query: NDArray[np.float32], k: int) -> list[Hit]:
        """One query (1, d) under the lock: ``REFINE * k`` candidates (at least
        ``REFINE_MIN``) from the 4-bit fast stage, as SQ8 positions, re-scored with the SQ8
        codes read at those positions (inner product with the decoded codes, as the SQ8
        scan scores them)."""
        assert self._fast is not None and self._params is not None
        faiss = self._faiss
        labels = self._fast.candidates(query, max(REFINE * k, REFINE_MIN), self._params.nprobe)
        if labels.size == 0:
            return []
        invlists, code_size = self._index.invlists, int(self._index.code_size)
        codes = np.empty((labels.shape[0], code_size), np.uint8)
        ids = np.empty(labels.shape[0], np.int64)
        for row, label in enumerate(labels.tolist()):
            lst, offset = label >> 32, label & 0xFFFFFFFF
            codes[row] = faiss.rev_swig_ptr(invlists.get_single_code(lst, offset), code_size)
            ids[row] = invlists.get_single_id(lst, offset)
        scores = self._index.sq.decode(codes) @ query[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return to_hits(ids[best][None, :], scores[best][None, :].astype(np.float32))[0]

    def _segment_of(self, lst: int) -> int:
        assert self._params is not None
        return int(lst * self._params.segments // self._params.nlist)

    def _segment_lists(self, number: int) -> tuple[int, int]:
        assert self._params is not None
        nlist, segments = self._params.nlist, self._params.segments
        lo = -(-number * nlist // segments)
        hi = -(-(number + 1) * nlist // segments)
        return lo, hi

    def _list(self, lst: int) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        """Zero-copy views of one inverted list's ids and codes (valid under the lock)."""
        faiss, invlists = self._faiss, self._index.invlists
        size = int(invlists.list_size(lst))
        if size == 0:
            return np.empty(0, np.int64), np.empty((0, self._index.code_size), np.uint8)
        ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size)
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * self._index.code_size)
        return ids, codes.reshape(size, self._index.code_size)

    # -- internals: the id -> list map ----------------------------------------------------

    def _merge_pending(
        self,
        more_ids: NDArray[np.int64] | None = None,
        more_lists: NDArray[np.int32] | None = None,
    ) -> None:
        """Merge the pending dict (and a bulk batch's ids and lists) into the sorted map."""
        if not self._pending and more_ids is None:
            return
        ids = np.fromiter(self._pending.keys(), np.int64, len(self._pending))
        lists = np.fromiter(self._pending.values(), np.int32, len(self._pending))
        if more_ids is not None and more_lists is not None:
            ids, lists = np.concatenate([ids, more_ids]), np.concatenate([lists, more_lists])
        # Sort only what is new and insert it into the sorted map: one pass over the map
        # (a memory copy, tens of ms at 10M), where sorting the whole map again took about
        # a second. No id is both new and in the map: ``add`` removes ids already present.
        order = np.argsort(ids, kind="stable")
        ids, lists = ids[order], lists[order]
        at = np.searchsorted(self._map_ids, ids)
        self._map_ids = np.insert(self._map_ids, at, ids)
        self._map_lists = np.insert(self._map_lists, at, lists)
        self._pending = {}

    def _present(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Which of ``ids`` the index holds: O(log n) each once IVF."""
        if int(self._index.ntotal) == 0:
            return np.empty(0, np.int64)
        if self._params is None:
            held: NDArray[np.int64] = self._faiss.rev_swig_ptr(
                self._index.id_map.data(), self._index.id_map.size()
            )
            return np.unique(ids[np.isin(ids, held)])
        mask = self._in_map(ids) | np.fromiter(
            (i in self._pending for i in ids.tolist()), bool, ids.shape[0]
        )
        return np.unique(ids[mask])

    def _in_map(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        if self._map_ids.size == 0:
            return np.zeros(ids.shape[0], bool)
        at = np.searchsorted(self._map_ids, ids)
        at = np.minimum(at, self._map_ids.size - 1)
        found: NDArray[np.bool_] = self._map_ids[at] == ids
        return found

    def _remove_locked(self, ids: NDArray[np.int64]) -> int:
        faiss = self._faiss
        if self._params is None:
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            selector = faiss.IDSelectorBatch(ids.shape[0], faiss.swig_ptr(ids))
            removed = int(self._index.remove_ids(selector))
            if removed:
                self._dirty.add(0)
            return removed
        by_list: dict[int, list[int]] = {}
        in_map = self._in_map(ids)
        at = np.searchsorted(self._map_ids, ids)
        for i, hit, pos in zip(ids.tolist(), in_map.tolist(), at.tolist(), strict=True):
            lst = int(self._map_lists[pos]) if hit else self._pending.get(i)
            if lst is not None:
                by_list.setdefault(lst, []).append(i)
        removed = 0
        invlists = self._index.invlists
        for lst, gone in by_list.items():
            list_ids, codes = self._list(lst)
            size = list_ids.shape[0]
            for target in gone:
                where = np.flatnonzero(list_ids[:size] == target)
                if where.size == 0:
                    continue
                pos, last = int(where[0]), size - 1
                if pos != last:  # the last entry moves over the removed one
                    invlists.update_entry(
                        lst, pos, int(list_ids[last]), faiss.swig_ptr(codes[last])
                    )
                size -= 1
                removed += 1
            invlists.resize(lst, size)
            self._dirty.add(self._segment_of(lst))
            if self._fast is not None:
                self._fast.refill(lst)
        self._index.ntotal = int(self._index.ntotal) - removed
        for i in ids.tolist():
            self._pending.pop(i, None)
        if in_map.any():
            drop = at[in_map]
            self._map_ids = np.delete(self._map_ids, drop)
            self._map_lists = np.delete(self._map_lists, drop)
        return removed

    # -- internals: files -----------------------------------------------------------------

    def _new_segment(self, number: int, lo: int, hi: int, count: int) -> _Segment:
        token = secrets.token_hex(6)
        return _Segment(
            f"{self._path.name}-{token}-{number}.seg", secrets.token_bytes(32), lo, hi, count
        )

    def _collect_writes(self) -> list[tuple[_Segment, bytes, int]]:
        """The segments to write (their payloads copied now, under the lock)."""
        writes: list[tuple[_Segment, bytes, int]] = []
        faiss = self._faiss
        if self._params is None:
            if self._relaid or self._dirty or not self._segments:
                ids, vectors = self._flat_vectors()
                segment = self._new_segment(0, 0, 0, ids.shape[0])
                writes.append((segment, _pack_flat(ids, vectors), ids.shape[0]))
                self._segments = [segment]
                self._trained_file = None
        else:
            if self._relaid or self._trained_file is None:
                empty = faiss.clone_index(self._index)
                empty.reset()
                trained = self._new_segment(-1, 0, 0, 0)
                writes.append((trained, bytes(faiss.serialize_index(empty)), 0))
                self._trained_file = trained
            if self._relaid or len(self._segments) != self._params.segments:
                numbers = list(range(self._params.segments))
                self._segments = [self._new_segment(n, *self._segment_lists(n), 0) for n in numbers]
            else:
                numbers = sorted(self._dirty)
            for number in numbers:
                lo, hi = self._segment_lists(number)
                payload, count = self._pack_lists(lo, hi)
                segment = self._new_segment(number, lo, hi, count)
                self._segments[number] = segment
                writes.append((segment, payload, count))
        self._dirty = set()
        self._relaid = False
        return writes

    def _pack_lists(self, lo: int, hi: int) -> tuple[bytes, int]:
        sizes, ids, codes = [], [], []
        for lst in range(lo, hi):
            list_ids, list_codes = self._list(lst)
            sizes.append(list_ids.shape[0])
            ids.append(list_ids.tobytes())
            codes.append(list_codes.tobytes())
        head = np.asarray([lo, hi], np.int64).tobytes() + np.asarray(sizes, np.int64).tobytes()
        return head + b"".join(ids) + b"".join(codes), int(sum(sizes))

    def _manifest(self) -> dict[str, Any]:
        def entry(s: _Segment) -> dict[str, Any]:
            return {
                "file": s.file,
                "key": base64.b64encode(s.key).decode(),
                "lo": s.lo,
                "hi": s.hi,
                "count": s.count,
            }

        p = self._params
        return {
            "kind": "flat" if p is None else "ivf-sq8",
            "params": None
            if p is None
            else {
                "nlist": p.nlist,
                "nprobe": p.nprobe,
                "trained_on": p.trained_on,
                "segments": p.segments,
            },
            "trained": None if self._trained_file is None else entry(self._trained_file),
            "segments": [entry(s) for s in self._segments],
        }

    def _delete_unreferenced(self, keep: set[str]) -> None:
        removed = False
        for path in segment_files(self._path):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_directory(self._path.parent)

    def _read_manifest(
        self,
    ) -> tuple[Any, IvfParams | None, list[_Segment], _Segment | None]:
        """The manifest file's header and what it names: (header, params, segments, the
        trained file's entry)."""
        payload, header = read_sealed(self._path, seal=self._seal, backend=BACKEND)
        if self._dimension and header.dimension != self._dimension:
            raise self._unreadable(
                f"holds dimension {header.dimension} vectors, expected {self._dimension}"
            )
        try:
            manifest = json.loads(bytes(payload))
            segments = [_segment(s) for s in manifest["segments"]]
            trained = None if manifest["trained"] is None else _segment(manifest["trained"])
            p = manifest["params"]
            params = (
                None
                if p is None
                else IvfParams(
                    int(p["nlist"]), int(p["nprobe"]), int(p["trained_on"]), int(p["segments"])
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise self._unreadable(f"holds no valid manifest ({error})") from error
        return header, params, segments, trained

    def _load(self) -> None:
        faiss = self._faiss
        header, params, segments, trained = self._read_manifest()
        self._dimension = check_dimension(header.dimension)
        self._params, self._segments, self._trained_file = params, segments, trained
        if params is None:
            self._index = self._flat()
            for s in segments:
                ids, vectors = _unpack_flat(self._read_segment(s), self._dimension)
                if ids.size:
                    self._index.add_with_ids(vectors, ids)
        else:
            if trained is None:
                raise self._unreadable("has no trained index")
            try:
                index = faiss.deserialize_index(self._read_segment(trained))
            except (RuntimeError, ValueError) as error:
                raise self._unreadable(f"holds no FAISS index ({error})") from error
            # read_index already returns the concrete class; a downcast_index here would drop
            # the owning wrapper and free the index under us.
            if not isinstance(index, faiss.IndexIVFScalarQuantizer) or index.nlist != params.nlist:
                raise self._unreadable("holds a trained index that does not match its manifest")
            self._index = index
            code_size = int(index.code_size)
            parts_i, parts_l = [], []
            total = 0
            for s in segments:
                lo, hi, sizes, ids, codes = _unpack_lists(self._read_segment(s), code_size)
                n = ids.shape[0]
                start = 0
                for lst, size in zip(range(lo, hi), sizes, strict=True):
                    if size:
                        index.invlists.add_entries(
                            lst,
                            size,
                            faiss.swig_ptr(ids[start : start + size]),
                            faiss.swig_ptr(codes[start * code_size : (start + size) * code_size]),
                        )
                        parts_l.append(np.full(size, lst, np.int32))
                    start += size
                parts_i.append(ids.copy())
                total += n
            index.ntotal = total
            ids_all = np.concatenate(parts_i) if parts_i else np.empty(0, np.int64)
            lists_all = np.concatenate(parts_l) if parts_l else np.empty(0, np.int32)
            order = np.argsort(ids_all, kind="stable")
            self._map_ids, self._map_lists = ids_all[order], lists_all[order]
        if int(self._index.ntotal) != header.count:
            raise self._unreadable("holds segments that do not match its manifest")
        if params is not None:
            with self._lock:
                self._start_fast()
        self._applied_seq = header.applied_seq
        self._delete_unreferenced(
            {s.file for s in segments} | ({trained.file} if trained else set())
        )

    def _read_segment(self, segment: _Segment) -> NDArray[np.uint8]:
        data, _ = read_sealed(
            self._path.parent / segment.file, seal=_KeySeal(segment.key), backend=SEGMENT_BACKEND
        )
        return data

    def _unreadable(self, reason: str) -> IndexFileUnreadable:
        return IndexFileUnreadable(f"index file {self._path} {reason}; rebuild the index")


def _build_fast_behind(owner: weakref.ref[IvfIndex], stage: FastStage) -> None:
    """The background build of ``stage`` for the index ``owner`` refers to: sample under its
    lock, train outside it, then mirror the lists a chunk at a time under it. Stops as soon
    as ``stage`` is no longer the live layout's (a retraining swapped in, ``clear()``), or the
    index is gone: it holds the index only weakly, so an index the ``IndexSet`` replaced
    (another process saved the file) is freed, and this thread ends, at the next chunk."""
    index = owner()
    if index is None:
        return
    with index._lock:
        if index._fast is not stage:
            return
        sample = stage.training_sample()
    del index
    stage.train(sample)
    del sample
    while True:
        index = owner()
        if index is None:
            return
        with index._lock:
            if index._fast is not stage or stage.ready:
                return
            stage.build(stage.built + FAST_CHUNK_LISTS)
        del index


def _unpack_lists(
    data: NDArray[np.uint8], code_size: int
) -> tuple[int, int, list[int], NDArray[np.int64], NDArray[np.uint8]]:
    """An IVF segment's payload (``IvfIndex._pack_lists``): (lo, hi, each list's size, the
    ids, the codes), the arrays views of ``data``."""
    lo, hi = (int(v) for v in np.frombuffer(data, np.int64, 2))
    sizes = np.frombuffer(data, np.int64, hi - lo, 16)
    n = int(sizes.sum())
    off = 16 + 8 * (hi - lo)
    ids = np.frombuffer(data, np.int64, n, off)
    codes = np.frombuffer(data, np.uint8, n * code_size, off + 8 * n)
    return lo, hi, sizes.tolist(), ids, codes


def _assign(index: Any, vectors: NDArray[np.float32]) -> NDArray[np.int64]:
    """Each vector's inverted list: its nearest centroid in ``index``'s coarse quantizer."""
    _, lists = index.quantizer.search(vectors, 1)
    out: NDArray[np.int64] = np.ascontiguousarray(lists[:, 0], dtype=np.int64)
    return out


def decrypted_payloads(manifest: Path, seal: IndexSeal) -> list[bytes]:
    """The manifest's payload and every segment's it names, decrypted (``index_plaintext``)."""
    payload, _ = read_sealed(manifest, seal=seal, backend=BACKEND)
    out = [payload.tobytes()]
    content = json.loads(payload.tobytes())
    entries = list(content["segments"]) + ([content["trained"]] if content["trained"] else [])
    for entry in entries:
        segment = _segment(entry)
        data, _ = read_sealed(
            manifest.parent / segment.file, seal=_KeySeal(segment.key), backend=SEGMENT_BACKEND
        )
        out.append(data.tobytes())
    return out


def _segment(entry: dict[str, Any]) -> _Segment:
    name = str(entry["file"])
    if os.sep in name or name.startswith("."):
        raise ValueError(f"bad segment file name {name!r}")
    return _Segment(
        name,
        base64.b64decode(entry["key"]),
        int(entry["lo"]),
        int(entry["hi"]),
        int(entry["count"]),
    )


def _trained(manifest: dict[str, Any]) -> set[str]:
    return set() if manifest["trained"] is None else {str(manifest["trained"]["file"])}


def _pack_flat(ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> bytes:
    return (
        np.asarray([ids.shape[0]], np.int64).tobytes()
        + ids.astype(np.int64).tobytes()
        + vectors.astype(np.float32).tobytes()
    )


def _unpack_flat(
    data: NDArray[np.uint8], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    n = int(np.frombuffer(data, np.int64, 1)[0])
    ids = np.frombuffer(data, np.int64, n, 8).copy()
    vectors = np.frombuffer(data, np.float32, n * dimension, 8 + 8 * n).reshape(n, dimension).copy()
    return ids, vectors
