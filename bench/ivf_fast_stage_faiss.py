"""The 4-bit fast stage against the SQ8 scan, in FAISS directly, at one size (the design
measurement behind ``probity/index/ivf_fast.py``).

    .venv/bin/python bench/ivf_fast_stage_faiss.py 10000000 > bench/results/ivf-fast-stage-10m.txt

Builds, outside the product, what the ``ivf`` index holds at that size: IVF-SQ8 (nlist
4·√n, ``by_residual=False``) over the loader's synthetic identities (``fill_home.centres`` +
noise 0.045), then a ``IndexIVFPQFastScan`` (32 x 4 bits) filled list by list from the SQ8
codes, as ``FastStage`` does. For 400 fresh probes of enrolled people it times the fast scan
alone (``fs p50``) and with a re-scoring of its candidates by SQ8 codes (``total``) through
``search_preassigned`` and an ``IDSelectorBatch``, the first design, which this measurement
replaced with reading the codes at their positions (about 2.7 ms of ``total`` at 10M was
that re-scoring). "found": the probe's own template among the 40 re-scored candidates.
Then the SQ8 scan alone at nprobe 1,024, as the index searched before.

At 10M this takes about 25 minutes and 12 GB (the float vectors and the build).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fill_home import centres, probe

QUERIES = 400


def main() -> None:
    n = int(sys.argv[1])
    nlist = int(4 * np.sqrt(n) / 8) * 8
    rng = np.random.default_rng(1)
    x = centres(7, 0, n)
    x += rng.normal(0, 0.045, x.shape).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    want = rng.choice(n, QUERIES, replace=False)
    q = np.stack([probe(7, int(i), draw=1) for i in want]).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 7 + 3

    started = time.time()
    sq = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(128),
        128,
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
        False,
    )
    sample = x[rng.choice(n, min(n, 64 * nlist), replace=False)]
    sq.cp.niter = 10
    sq.train(sample)
    _, assigned = sq.quantizer.search(x, 1)
    lists_of = assigned.ravel().astype(np.int64)
    sq.add_core(n, faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(lists_of))
    print("sq build", time.time() - started, flush=True)
    del x

    started = time.time()
    fs = faiss.IndexIVFPQFastScan(sq.quantizer, 128, nlist, 32, 4, faiss.METRIC_INNER_PRODUCT)
    fs.by_residual = False
    invlists = sq.invlists

    def one_list(lst: int) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        size = invlists.list_size(lst)
        list_ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * 128).reshape(size, 128)
        return list_ids, codes

    train_codes = np.concatenate([one_list(i)[1] for i in range(0, nlist, max(1, nlist // 200))])
    fs.train(sq.sq.decode(train_codes[:65536]))
    print("pq train", time.time() - started)
    blocks = faiss.downcast_InvertedLists(fs.invlists)
    packer, block_size, per_block = blocks.packer, blocks.block_size, blocks.n_per_block
    for lst in range(nlist):
        list_ids, codes = one_list(lst)
        size = list_ids.shape[0]
        if size == 0:
            continue
        pq_codes = fs.pq.compute_codes(sq.sq.decode(codes))
        count = -(-size // per_block)
        packed = np.zeros(count * block_size, np.uint8)
        padded = np.zeros((count * per_block, pq_codes.shape[1]), np.uint8)
        padded[:size] = pq_codes
        for b in range(count):
            packer.pack_all(
                faiss.swig_ptr(padded[b * per_block :]), faiss.swig_ptr(packed[b * block_size :])
            )
        blocks.add_entries(lst, size, faiss.swig_ptr(list_ids), faiss.swig_ptr(packed))
    fs.ntotal = sq.ntotal
    print("fs from codes", time.time() - started, flush=True)

    map_ids = np.concatenate([one_list(i)[0] for i in range(nlist)])
    map_lists = np.concatenate([np.full(invlists.list_size(i), i, np.int32) for i in range(nlist)])
    order = np.argsort(map_ids)
    map_ids, map_lists = map_ids[order], map_lists[order]

    def refine(query: NDArray[np.float32], candidates: NDArray[np.int64], k: int) -> Any:
        candidates = np.ascontiguousarray(candidates[candidates >= 0])
        at = np.searchsorted(map_ids, candidates)
        lists = np.unique(map_lists[at]).astype(np.int64)[None, :]
        selector = faiss.IDSelectorBatch(candidates.shape[0], faiss.swig_ptr(candidates))
        params = faiss.SearchParametersIVF(sel=selector, nprobe=lists.shape[1])
        scores = np.empty((1, k), np.float32)
        labels = np.empty((1, k), np.int64)
        zeros = np.zeros(lists.shape, np.float32)
        sq.search_preassigned_c(
            1,
            faiss.swig_ptr(query),
            k,
            faiss.swig_ptr(lists),
            faiss.swig_ptr(zeros),
            faiss.swig_ptr(scores),
            faiss.swig_ptr(labels),
            False,
            params,
            None,
        )
        return labels

    sq.parallel_mode = 1
    if n > 5_000_000:
        runs = [(1024, 40, 0), (1024, 100, 0), (1024, 100, 12), (1024, 100, 14)]
        runs += [(1536, 100, 0), (2048, 100, 0)]
    else:
        runs = [(666, 100, 0), (666, 100, 12), (666, 100, 14), (666, 100, 10)]
    for nprobe, count, implem in runs:
        fs.implem = implem
        fs.nprobe = nprobe
        scan, total, found = [], [], 0
        for i in range(QUERIES):
            t0 = time.perf_counter()
            _, labels = fs.search(q[i : i + 1], count)
            t1 = time.perf_counter()
            kept = refine(q[i : i + 1], labels[0], 40)
            t2 = time.perf_counter()
            scan.append(t1 - t0)
            total.append(t2 - t0)
            found += int(want[i] * 7 + 3 in kept[0])
        print(
            f"fs nprobe {nprobe} R {count} implem {implem}: fs p50 {np.median(scan) * 1e3:.2f} "
            f"total p50 {np.median(total) * 1e3:.2f} p95 {np.percentile(total, 95) * 1e3:.2f} "
            f"found {found / QUERIES * 100:.2f}%",
            flush=True,
        )
    sq.nprobe = 1024 if n > 5_000_000 else 666
    times, found = [], 0
    for i in range(QUERIES):
        t0 = time.perf_counter()
        _, labels = sq.search(q[i : i + 1], 40)
        times.append(time.perf_counter() - t0)
        found += int(want[i] * 7 + 3 in labels[0])
    p50 = np.median(times) * 1e3
    print(f"sq8 nprobe {sq.nprobe}: p50 {p50:.2f} found {found / QUERIES * 100:.2f}%")


if __name__ == "__main__":
    main()
