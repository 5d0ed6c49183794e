"""The fast first stage of an ``IvfIndex``: 4-bit product-quantised codes scanned with FAISS
fast-scan, whose candidates the 8-bit codes then re-score.

**Why.** A query at 10M scans about 810,000 codes (nprobe 1,024 of 12,648 lists). With the
128-byte SQ8 codes that is about 104 MB of memory read a query, and it took 12.2 ms however
many cores split it: the scan is bound by memory bandwidth. Scanning fewer lists loses true
matches (at 512 lists, 1-1.5 % of them), so the fix is a smaller code, not fewer lists. This
stage holds a 16-byte code a vector (``PQ_M`` = 32 sub-quantisers of 4 bits, trained on the
gallery's own vectors) in FAISS's fast-scan layout, blocks of 32 codes scanned with SIMD
look-up tables in registers: 13 MB a query at 10M. Measured at 10M (nprobe 1,024, the 10M
loader running beside): the FAISS fast scan 5.2 ms p50 against 11.9 ms for the SQ8 scan,
the true match among the candidates 99.5 % of 400 probes for both; through the product:
bench/README.md, "Scale through the product".

**Precision.** 4-bit PQ is coarse, so it only chooses candidates: a query takes
``REFINE`` times as many from it as it was asked for (at least ``REFINE_MIN``), and those are
re-scored with their SQ8 codes. To make that cheap, this stage does not store the vectors'
ids: its label for a vector is the vector's *position* in the SQ8 index, ``list << 32 |
offset``, and the owner reads the SQ8 code and the id at that position directly (an earlier
version kept ids and re-scored with ``search_preassigned`` over the candidates' lists and an
``IDSelectorBatch``: about 2.7 ms a query at 10M, more than half the fast scan itself).
Positions stay true because a list here is always the SQ8 list in the same order: appends
go to both in input order, and a removal (the SQ8 list moves its last entry over the removed
one) rebuilds this list whole; an add is encoded from its SQ8 round trip, so the stage is
the same whether it grew by adds or was rebuilt at open.

The search service then re-scores the final ``k`` exactly from the sealed templates, as
before. So the ranking the product shows is unchanged; what this stage can change is which
vectors reach the SQ8 re-scoring (``REFINE``).

**Derived, never stored.** The segments keep only the SQ8 codes, the source of truth (they
are what lets lists be rewritten and re-laid-out from codes alone). This stage is rebuilt
from them whenever the SQ8 layout is loaded or replaced, list by list: PQ is trained on a
sample of the decoded codes, then each list's codes are decoded, PQ-encoded and packed. A
list is rebuilt whole from its SQ8 codes after a removal, so the two can never disagree
about what a list holds; adds are encoded and appended. The owner (``IvfIndex``) keeps every
call under its lock.

Memory: 16 bytes of code and 8 of label (position) a vector, plus up to 31 empty slots a
list (blocks of 32): about 25 B a vector, 250 MB at 10M.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PQ_M", "REFINE", "REFINE_MIN", "FastStage", "positions"]

PQ_M = 32
"""Sub-quantisers a code: 4 bits each, so 16 bytes a 128-d vector (4 dimensions each). A
dimension it does not divide takes the largest power of two below it that does."""

REFINE = 2
"""A query takes this many fast-stage candidates for each result it returns, and re-scores
them with their SQ8 codes: the search service's 40 become 80. At 10M (synthetic, uniform
identities) 40 and 100 fast-stage candidates held the true match equally often (99.5 % of
400 probes, as the SQ8 scan), so the margin is for real embeddings, whose genuine scores sit
closer to the impostors'; at small sizes a larger count costs more than the scan (FAISS's
fast-scan result handling grows with it: 0.6 ms at 64 and 1.9 ms at 160, 300k vectors)."""

REFINE_MIN = 64
"""...and at least this many, so a small ``k`` still gets a margin."""

TRAIN_SAMPLE = 65_536
"""Decoded vectors the PQ codebooks are trained on (16 centroids a sub-quantiser needs far
fewer; more only costs time)."""


def positions(lst: int, offsets: NDArray[np.int64]) -> NDArray[np.int64]:
    """The labels of the vectors at ``offsets`` in SQ8 list ``lst``: ``lst << 32 | offset``."""
    out: NDArray[np.int64] = (np.int64(lst) << np.int64(32)) | offsets.astype(np.int64)
    return out


class FastStage:
    """The fast-scan mirror of one trained IVF-SQ8 index (``sq``), sharing its coarse
    quantizer, so a vector is in the same list in both. Lists ``[0, built)`` mirror ``sq``;
    the rest are not built yet, and the stage answers searches only once every list is
    (``ready``). Not thread-safe: the owning ``IvfIndex`` calls it under its lock."""

    def __init__(self, sq: Any, faiss: Any, sub_quantisers: int | None = None) -> None:
        """``sub_quantisers``: ``PQ_M`` unless given (a bench compares other code sizes)."""
        self._faiss = faiss
        self._sq = sq  # keeps the shared quantizer alive
        self.nlist = int(sq.nlist)
        self.built = 0
        index = faiss.IndexIVFPQFastScan(
            sq.quantizer,
            int(sq.d),
            self.nlist,
            sub_quantisers or _sub_quantisers(int(sq.d)),
            4,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.by_residual = False  # like the SQ8 codes: a code does not depend on its list
        # Implementation 14 splits one query's lists across the OpenMP threads (the default
        # runs a single query on one core). Measured at 10M through the product, idle
        # machine, nprobe 1,024: p50 7.2 -> 5.5 ms, 1,536: 9.6 -> 6.9 ms, same candidates
        # kept (bench/results/scale-10m-fast.json, "sweep"). With the other core busy it
        # is slower (the threads wait for each other): the SQ8 scan's parallel_mode 1 makes
        # the same trade.
        index.implem = 14
        self._index = index
        self._lists: Any = None  # the BlockInvertedLists, once trained

    @property
    def ready(self) -> bool:
        return self._lists is not None and self.built >= self.nlist

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def training_sample(self) -> NDArray[np.uint8]:
        """SQ8 codes to train on, about ``TRAIN_SAMPLE`` spread evenly over every list
        (copied: the caller may train on them outside the lock)."""
        sq, faiss = self._sq, self._faiss
        total = max(1, int(sq.ntotal))
        stride = max(1, total // TRAIN_SAMPLE)
        parts = []
        code_size = int(sq.code_size)
        for lst in range(self.nlist):
            codes = _sq8_codes(sq, faiss, lst)
            if codes.shape[0]:
                parts.append(codes[::stride].copy())
        if not parts:
            return np.empty((0, code_size), np.uint8)
        return np.concatenate(parts)

    def train(self, sample_codes: NDArray[np.uint8]) -> None:
        """Train the PQ codebooks on decoded SQ8 codes (no lock needed: touches only this
        stage, which is not in use yet)."""
        vectors = np.ascontiguousarray(self._sq.sq.decode(sample_codes), dtype=np.float32)
        self._index.train(vectors)
        self._lists = self._faiss.downcast_InvertedLists(self._index.invlists)

    def build(self, upto: int) -> None:
        """Mirror the SQ8 lists ``[built, upto)`` (they must be empty here)."""
        upto = min(int(upto), self.nlist)
        for lst in range(self.built, upto):
            self._fill(lst)
        self.built = max(self.built, upto)

    def add(self, lists: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Append vectors the SQ8 index has just appended (``add_core``, in input order) to
        these lists; lists not built yet are skipped (they will be built from the SQ8 codes,
        these included)."""
        if self._lists is None:
            return
        keep = lists < self.built
        if not keep.all():
            lists, vectors = lists[keep], vectors[keep]
        if lists.size == 0:
            return
        # Encoded from the SQ8 round trip, as a rebuild from the segments would encode
        # them: the stage is then the same whatever its history (added, or rebuilt at open).
        sq8 = self._sq.sq
        codes = self._encode(sq8.decode(sq8.compute_codes(np.ascontiguousarray(vectors))))
        order = np.argsort(lists, kind="stable")  # input order within a list, as add_core
        lists, codes = lists[order], codes[order]
        bounds = np.flatnonzero(np.diff(lists)) + 1
        for start, stop in zip(
            [0, *bounds.tolist()], [*bounds.tolist(), lists.shape[0]], strict=True
        ):
            lst = int(lists[start])
            held = int(self._lists.list_size(lst))
            offsets = np.arange(held, held + stop - start, dtype=np.int64)
            self._append(lst, positions(lst, offsets), codes[start:stop])

    def refill(self, lst: int) -> None:
        """Rebuild one list from its SQ8 codes (after a removal changed it)."""
        if self._lists is None or lst >= self.built:
            return
        self._index.ntotal = int(self._index.ntotal) - int(self._lists.list_size(lst))
        self._lists.resize(lst, 0)
        self._fill(lst)

    def candidates(self, query: NDArray[np.float32], count: int, nprobe: int) -> NDArray[np.int64]:
        """The SQ8 positions (``positions``) of up to ``count`` candidates for one query
        (1, d), best first by the 4-bit codes."""
        self._index.nprobe = int(nprobe)
        _, labels = self._index.search(query, int(count))
        row: NDArray[np.int64] = labels[0]
        return row[row >= 0]

    def list_labels(self, lst: int) -> NDArray[np.int64]:
        """The labels list ``lst`` holds here, in order (a copy; for checks and tests)."""
        if self._lists is None:
            return np.empty(0, np.int64)
        size = int(self._lists.list_size(lst))
        if size == 0:
            return np.empty(0, np.int64)
        out: NDArray[np.int64] = self._faiss.rev_swig_ptr(self._lists.get_ids(lst), size).copy()
        return out

    def list_codes(self, lst: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """(held, expected) for list ``lst``: its 4-bit codes unpacked, in order, and the
        codes of the SQ8 list's vectors encoded afresh; equal when this list mirrors the SQ8
        one (for checks and tests)."""
        sq, faiss = self._sq, self._faiss
        assert self._lists is not None
        size = int(self._lists.list_size(lst))
        m = int(self._index.pq.code_size)
        held = np.zeros((size, m), np.uint8)
        if size:
            block = faiss.rev_swig_ptr(
                self._lists.get_codes(lst), -(-size // 32) * int(self._lists.block_size)
            )
            for i in range(size):
                self._lists.packer.unpack_1_c(faiss.swig_ptr(block), i, faiss.swig_ptr(held[i]))
        codes = _sq8_codes(sq, faiss, lst)
        if codes.shape[0] == 0:
            return held, np.zeros((0, m), np.uint8)
        return held, self._encode(sq.sq.decode(codes))

    # -- internals ---------------------------------------------------------------------------

    def _encode(self, vectors: NDArray[np.float32]) -> NDArray[np.uint8]:
        codes: NDArray[np.uint8] = self._index.pq.compute_codes(
            np.ascontiguousarray(vectors, dtype=np.float32)
        )
        return codes

    def _fill(self, lst: int) -> None:
        sq, faiss = self._sq, self._faiss
        codes = _sq8_codes(sq, faiss, lst)
        size = int(codes.shape[0])
        if size == 0:
            return
        vectors = sq.sq.decode(codes)
        self._append(lst, positions(lst, np.arange(size, dtype=np.int64)), self._encode(vectors))

    def _append(self, lst: int, labels: NDArray[np.int64], codes: NDArray[np.uint8]) -> None:
        """Append ``codes`` (n, 16) under ``labels`` to list ``lst`` in the fast-scan layout
        (blocks of 32 codes, interleaved by sub-quantiser).

        An empty list takes whole packed blocks through ``add_entries``. A list that already
        holds codes is grown with ``resize`` and each new code packed into place with the
        list's ``CodePacker``: FAISS's ``BlockInvertedLists::add_entries`` (1.15) copies
        whole blocks to the wrong place whenever the list's size is a non-zero multiple of
        the block size in bytes (512 entries here), and corrupted the heap at 10M, where
        lists hold about 790 vectors (bench/README.md, "The fast stage")."""
        faiss, lists = self._faiss, self._lists
        n = int(labels.shape[0])
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        per_block, block_size = int(lists.n_per_block), int(lists.block_size)
        held = int(lists.list_size(lst))
        packer = lists.packer
        if held == 0:
            blocks = -(-n // per_block)
            flat = np.zeros((blocks * per_block, codes.shape[1]), np.uint8)
            flat[:n] = codes
            packed = np.zeros(blocks * block_size, np.uint8)
            for b in range(blocks):
                packer.pack_all(
                    faiss.swig_ptr(flat[b * per_block :]),
                    faiss.swig_ptr(packed[b * block_size :]),
                )
            lists.add_entries(lst, n, faiss.swig_ptr(labels), faiss.swig_ptr(packed))
        else:
            old_blocks = -(-held // per_block)
            lists.resize(lst, held + n)
            blocks = -(-(held + n) // per_block)
            data = faiss.rev_swig_ptr(lists.get_codes(lst), blocks * block_size)
            data[old_blocks * block_size :] = 0  # new blocks: no stale nibbles
            faiss.rev_swig_ptr(lists.get_ids(lst), held + n)[held:] = labels
            flat = np.ascontiguousarray(codes, dtype=np.uint8)
            for i in range(n):
                packer.pack_1_c(faiss.swig_ptr(flat[i]), held + i, faiss.swig_ptr(data))
        self._index.ntotal = int(self._index.ntotal) + n


def _sq8_codes(sq: Any, faiss: Any, lst: int) -> NDArray[np.uint8]:
    """A zero-copy (size, code_size) view of SQ8 list ``lst``'s codes (valid under the
    owner's lock; ``IvfIndex._list`` is the same for the live index, with its ids)."""
    size, code_size = int(sq.invlists.list_size(lst)), int(sq.code_size)
    if size == 0:
        return np.empty((0, code_size), np.uint8)
    codes: NDArray[np.uint8] = faiss.rev_swig_ptr(sq.invlists.get_codes(lst), size * code_size)
    return codes.reshape(size, code_size)


def _sub_quantisers(dimension: int) -> int:
    """``PQ_M`` when it divides the dimension (128-d models: 4 dimensions a sub-quantiser),
    else the largest power of two below it that does."""
    m = PQ_M
    while dimension % m:
        m //= 2
    return m
