"""Benchmark the Milvus backend's index types on Milvus Lite, to choose the default.

For each index type (FLAT, IVF_SQ8, HNSW; IVF_FLAT with ``--all``), through ``MilvusIndex``
itself (so the numbers include Probity's checks and batching): insert rate (rows/s, upsert
plus the flush of ``save()``), the time until the index is built (Lite builds a sealed
segment's index in a background thread and scans the segment by brute force until then, so
latency and recall are measured after), single-query latency p50/p95 at k=10, recall@10
against exact numpy search, and the cost of one erasure (``remove`` of one id: delete,
flush, compaction request and, on Lite, the rewrite of the collection).

Data: ``--n`` random vectors drawn uniformly on the unit sphere (normal, then normalised),
``--dimension`` 128, and 200 queries drawn the same way: the hard case for approximate
indexes (no clusters to exploit; real face templates cluster by person). ``--data faces``
draws face-like data instead (identity centres plus noise, as in bench/index_search.py).

    .venv/bin/python bench/milvus_index.py                 # 100k x 128-d, a few minutes
    .venv/bin/python bench/milvus_index.py --n 20000       # smoke run

Prints a markdown table and writes JSON (default ``bench/results/milvus_index.json``).
DISKANN is cluster-only (Milvus Lite does not build it): ``--uri https://milvus:19530 --types
DISKANN HNSW`` measures a server instead (collections ``probity_bench-*``, dropped by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.config import MilvusSettings
from probity.index.milvus_index import MilvusIndex
from probity.index.vectors import normalise

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "milvus_index.json"

# Build and search parameters per index type: Milvus's usual starting points, with the
# search effort raised until recall@10 on this data is about 0.95 or better where it can be.
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "FLAT": ({}, {}),
    "IVF_FLAT": ({"nlist": 1024}, {"nprobe": 64}),
    "IVF_SQ8": ({"nlist": 1024}, {"nprobe": 64}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 128}),
    "DISKANN": ({}, {"search_list": 100}),  # a cluster only (--uri)
}


@dataclass
class Row:
    index_type: str
    n: int
    dimension: int
    insert_rows_per_s: float
    index_build_s: float
    index_built: bool
    first_search_s: float
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    remove_one_s: float
    build_params: dict[str, Any]
    search_params: dict[str, Any]


def data(kind: str, n: int, dimension: int, queries: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    gallery: NDArray[np.floating[Any]]
    probes: NDArray[np.floating[Any]]
    if kind == "random":
        gallery = rng.normal(size=(n, dimension))
        probes = rng.normal(size=(queries, dimension))
    else:
        identities = max(1, n // 4)
        centres = normalise(rng.normal(size=(identities, dimension)), dimension)
        noise = 0.045
        owner = rng.integers(0, identities, size=n)
        gallery = centres[owner] + rng.normal(scale=noise, size=(n, dimension))
        probe_owner = rng.choice(owner, size=queries)
        probes = centres[probe_owner] + rng.normal(scale=noise, size=(queries, dimension))
    return (
        normalise(gallery.astype(np.float32), dimension),
        normalise(probes.astype(np.float32), dimension),
    )


def exact_top10(gallery: NDArray[np.float32], probes: NDArray[np.float32]) -> Any:
    scores = probes @ gallery.T
    return np.argsort(-scores, axis=1)[:, :10]


def wait_for_index(index: MilvusIndex) -> bool:
    """Wait until Lite's background worker has built the index of the sealed segments (after
    a flush it builds them in a thread; searches scan a segment by brute force until then).
    Lite reports every row as indexed at once, so this waits on the worker itself (a private
    method: a benchmark may; the product does not)."""
    from milvus_lite.server_manager import server_manager_instance

    entry = server_manager_instance._servers.get(os.path.abspath(index.path))
    if entry is None:
        return False  # a server: the first search waits for nothing; re-run for steady state
    entry[1].get_collection(index.collection)._wait_for_bg()
    return True


def run(index_type: str, gallery: Any, probes: Any, truth: Any, folder: Path, uri: str = "") -> Row:
    build, search = CONFIGS[index_type]
    settings = MilvusSettings(
        uri=uri, index_type=index_type, index_params=build, search_params=search
    )
    n, dimension = gallery.shape
    index = MilvusIndex(folder / f"bench-{index_type}.milvus.db", dimension, settings=settings)
    ids = np.arange(n, dtype=np.int64)
    start = time.perf_counter()
    for chunk in range(0, n, 20_000):
        index.add(ids[chunk : chunk + 20_000], gallery[chunk : chunk + 20_000])
    index.save()
    insert_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    built = wait_for_index(index)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    index.search(probes[:1], k=10)
    first = time.perf_counter() - start
    for row in probes[:10]:  # warm-up
        index.search(row[None, :], k=10)
    latencies = []
    found = []
    for row in probes:
        start = time.perf_counter()
        [hits] = index.search(row[None, :], k=10)
        latencies.append((time.perf_counter() - start) * 1000)
        found.append([hit.id for hit in hits])
    recall = float(
        np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)])
    )
    start = time.perf_counter()
    index.remove([n // 2])
    index.save()
    remove_s = time.perf_counter() - start  # the rewrite; its index is rebuilt after
    index.close()
    latencies.sort()
    return Row(
        index_type=index_type,
        n=n,
        dimension=dimension,
        insert_rows_per_s=round(insert_rate, 1),
        index_build_s=round(build_s, 1),
        index_built=built,
        first_search_s=round(first, 3),
        p50_ms=round(statistics.median(latencies), 3),
        p95_ms=round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        recall_at_10=round(recall, 4),
        remove_one_s=round(remove_s, 3),
        build_params=build,
        search_params=search,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=["random", "faces"], default="random")
    parser.add_argument("--types", nargs="*", default=["FLAT", "IVF_SQ8", "HNSW"])
    parser.add_argument("--all", action="store_true", help="also IVF_FLAT")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--uri", default="", help="a Milvus server to measure instead of Milvus Lite"
    )
    args = parser.parse_args()
    types = list(args.types) + (["IVF_FLAT"] if args.all else [])
    gallery, probes = data(args.data, args.n, args.dimension, args.queries, seed=7)
    truth = exact_top10(gallery, probes)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index_type in types:
            rows.append(run(index_type, gallery, probes, truth, Path(folder), args.uri))
            print(rows[-1], flush=True)
    import milvus_lite
    import pymilvus

    print(f"\n{args.n:,} x {args.dimension}-d, {args.data} data, {args.queries} queries, k=10")
    print("| index | insert rows/s | index build s | p50 ms | p95 ms | recall@10 | remove 1 s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.index_type} | {r.insert_rows_per_s:,.0f} | {r.index_build_s} | {r.p50_ms} "
            f"| {r.p95_ms} | {r.recall_at_10} | {r.remove_one_s} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "pymilvus": pymilvus.__version__,
                    "milvus_lite": milvus_lite.__version__,
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                },
                "data": args.data,
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
