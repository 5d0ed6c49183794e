"""Benchmark the vector index backends on synthetic face-like embeddings.

Measures, for each gallery size: build time, memory, single-query latency (p50/p95, k=10),
batched throughput, save time and file size, and agreement with exact search (top-1 and
top-10 recall). Backends: ``ExactIndex`` (numpy), ``FaissIndex`` (FAISS flat, the product
default) and, for comparison only, FAISS HNSW (``IndexHNSWFlat`` in ``IndexIDMap2``) at
several ``efSearch`` values. HNSW is not offered by the product: it cannot remove a vector
physically (only mark it deleted), so an erased template would stay in memory and on disk.

Synthetic data: ``n / templates_per_identity`` identity centres drawn uniformly on the unit
sphere; each template is its centre plus Gaussian noise (per-dimension sigma ``--noise``, by
default giving a same-identity cosine of about 0.8, like a face model's genuine pairs);
queries are new noisy samples of enrolled identities (a fresh photo of an enrolled person).

    .venv/bin/python bench/index_search.py                        # 100k and 1M (~4-5 min)
    .venv/bin/python bench/index_search.py --sizes 20000 --no-hnsw  # smoke run, seconds

Prints a markdown table and writes JSON (default ``bench/results/index_search.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from probity.index.exact import ExactIndex
from probity.index.faiss_index import FaissIndex
from probity.index.vectors import normalise

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "index_search.json"
SearchFn = Callable[[NDArray[np.float32], int], NDArray[np.int64]]


@dataclass
class Row:
    size: int
    backend: str
    build_s: float
    memory_mib: float
    file_mib: float
    save_s: float | None
    p50_ms: float
    p95_ms: float
    batch_qps: float
    top1_agreement: float
    top10_recall: float
    mate_recall: float


# IndexIDMap2 keeps an std::unordered_map<int64, int64> from id to row: one heap node
# (next pointer + key + value, ~32 bytes with malloc overhead) plus ~8 bytes of bucket per id.
REV_MAP_BYTES_PER_ID = 40


def memory_estimate(backend: str, n: int, dimension: int, serialised_bytes: int = 0) -> int:
    """Approximate resident bytes of an index holding ``n`` vectors.

    Process RSS deltas are unreliable here (freed numpy buffers are reused by the next build),
    so memory is computed from the data structures: float32 vectors plus int64 ids for all,
    plus the reverse id map for FAISS, plus the graph links for HNSW (taken from its
    serialised size, which holds vectors, links and ids).
    """
    flat = n * (4 * dimension + 8)
    if backend == "exact":
        return flat
    if backend == "faiss":
        return flat + n * REV_MAP_BYTES_PER_ID
    return serialised_bytes + n * REV_MAP_BYTES_PER_ID


def make_data(
    n: int, n_queries: int, dimension: int, per_identity: int, noise: float, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """Clustered gallery (n, d) and queries (n_queries, d), float32, not normalised, with the
    identity of each gallery row and of each query (for mate recall)."""
    rng = np.random.default_rng(seed)
    identities = max(1, n // per_identity)
    centres = rng.standard_normal((identities, dimension), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owner = rng.integers(0, identities, size=n)
    gallery = centres[owner]
    gallery += rng.standard_normal((n, dimension), dtype=np.float32) * np.float32(noise)
    probe_owner = rng.choice(owner, size=n_queries)
    probes = centres[probe_owner]
    probes += rng.standard_normal((n_queries, dimension), dtype=np.float32) * np.float32(noise)
    return gallery, probes, owner, probe_owner


def hits_to_ids(results: list[list[Any]], k: int) -> NDArray[np.int64]:
    out = np.full((len(results), k), -1, dtype=np.int64)
    for row, hits in enumerate(results):
        out[row, : len(hits)] = [hit.id for hit in hits]
    return out


def product_search(index: ExactIndex | FaissIndex) -> SearchFn:
    """Search through the product class (input checks, lock, Hit objects included)."""
    return lambda queries, k: hits_to_ids(index.search(queries, k), k)


def timed_build(build: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``build``; return its result and the seconds it took."""
    gc.collect()
    start = time.perf_counter()
    built = build()
    return built, time.perf_counter() - start


@dataclass
class SearchStats:
    p50_ms: float
    p95_ms: float
    batch_qps: float
    found: NDArray[np.int64]


def search_stats(
    search: SearchFn, single: NDArray[np.float32], batch: NDArray[np.float32], k: int
) -> SearchStats:
    """Single-query latencies over ``single`` (one call per row) and one batched call."""
    search(single[:1], k)  # warm-up
    times = []
    for row in range(single.shape[0]):
        start = time.perf_counter()
        search(single[row : row + 1], k)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    found = search(batch, k)
    batch_s = time.perf_counter() - start
    return SearchStats(
        p50_ms=statistics.median(times),
        p95_ms=float(np.percentile(times, 95)),
        batch_qps=batch.shape[0] / batch_s,
        found=found,
    )


def agreement(
    found: NDArray[np.int64],
    truth: NDArray[np.int64],
    owner: NDArray[np.int64],
    probe_owner: NDArray[np.int64],
) -> tuple[float, float, float]:
    """Agreement of ``found`` with the exact results ``truth`` (both (queries, k) ids):

    - top-1 agreement: same best id;
    - top-k recall: mean share of the exact top-k ids that were found;
    - mate recall: of the exact top-k ids that belong to the query's own identity (the
      candidates that matter in face search), the share that were found. Ranks held by
      unrelated people at near-equal low similarity are what an approximate index misses
      first, and top-k recall counts those too.
    """
    top1 = float(np.mean(found[:, 0] == truth[:, 0]))
    shared = [
        len(set(f.tolist()) & set(t.tolist())) / t.size for f, t in zip(found, truth, strict=True)
    ]
    mates_found = mates_total = 0
    for f, t, person in zip(found, truth, probe_owner, strict=True):
        mates = {i for i in t.tolist() if owner[i] == person}
        mates_total += len(mates)
        mates_found += len(mates & set(f.tolist()))
    return top1, float(np.mean(shared)), mates_found / max(1, mates_total)


def run_size(args: argparse.Namespace, size: int, workdir: Path) -> list[Row]:
    print(f"size {size:,}", file=sys.stderr)
    gallery, probes, owner, probe_owner = make_data(
        size,
        max(args.queries, args.batch),
        args.dimension,
        args.per_identity,
        args.noise,
        args.seed,
    )
    ids = np.arange(size, dtype=np.int64)
    single, batch, k = probes[: args.queries], probes[: args.batch], args.k
    rows: list[Row] = []
    truth: NDArray[np.int64] | None = None

    backends: list[tuple[str, str, type[ExactIndex] | type[FaissIndex], str]] = [
        ("exact (numpy)", "exact", ExactIndex, ".npz"),
        ("faiss flat", "faiss", FaissIndex, ".faiss"),
    ]
    for name, kind, cls, suffix in backends:
        path = workdir / f"{size}{suffix}"

        def build(cls: type[ExactIndex] | type[FaissIndex] = cls, path: Path = path) -> Any:
            index = cls(path, args.dimension)
            index.add(ids, gallery)
            return index

        index, build_s = timed_build(build)
        memory_mib = memory_estimate(kind, size, args.dimension) / 2**20
        stats = search_stats(product_search(index), single, batch, k)
        start = time.perf_counter()
        index.save()
        save_s = time.perf_counter() - start
        file_mib = path.stat().st_size / 2**20
        path.unlink()
        del index
        if truth is None:
            truth = stats.found  # the exact backend runs first and is the reference
        top1, recall, mates = agreement(stats.found, truth, owner, probe_owner[: args.batch])
        rows.append(
            Row(
                size,
                name,
                build_s,
                memory_mib,
                file_mib,
                save_s,
                stats.p50_ms,
                stats.p95_ms,
                stats.batch_qps,
                top1,
                recall,
                mates,
            )
        )
        print(f"  {name}: build {build_s:.1f}s, p50 {stats.p50_ms:.2f} ms", file=sys.stderr)
    assert truth is not None
    if args.no_hnsw or (args.hnsw_max_size and size > args.hnsw_max_size):
        return rows

    def build_hnsw() -> tuple[Any, Any]:
        hnsw = faiss.IndexHNSWFlat(args.dimension, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = args.hnsw_ef_construction
        wrapped = faiss.IndexIDMap2(hnsw)
        wrapped.add_with_ids(normalise(gallery, args.dimension), ids)
        return hnsw, wrapped

    (hnsw, wrapped), build_s = timed_build(build_hnsw)
    serialised = int(faiss.serialize_index(wrapped).nbytes)
    file_mib = serialised / 2**20
    memory_mib = memory_estimate("hnsw", size, args.dimension, serialised) / 2**20

    def hnsw_search(q: NDArray[np.float32], kk: int) -> NDArray[np.int64]:
        _, labels = wrapped.search(normalise(q, args.dimension, what="queries"), kk)
        return np.asarray(labels, dtype=np.int64)

    for ef in args.hnsw_ef_search:
        hnsw.hnsw.efSearch = ef
        stats = search_stats(hnsw_search, single, batch, k)
        top1, recall, mates = agreement(stats.found, truth, owner, probe_owner[: args.batch])
        name = f"faiss HNSW M={args.hnsw_m} ef={ef}"
        rows.append(
            Row(
                size,
                name,
                build_s,
                memory_mib,
                file_mib,
                None,
                stats.p50_ms,
                stats.p95_ms,
                stats.batch_qps,
                top1,
                recall,
                mates,
            )
        )
        print(f"  {name}: build {build_s:.1f}s, p50 {stats.p50_ms:.2f} ms", file=sys.stderr)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| vectors | backend | build s | memory MiB | file MiB | save s | p50 ms | p95 ms "
        "| batch q/s | top-1 agree | top-10 recall | mate recall |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        save = f"{r.save_s:.2f}" if r.save_s is not None else "–"
        lines.append(
            f"| {r.size:,} | {r.backend} | {r.build_s:.2f} | {r.memory_mib:.0f} "
            f"| {r.file_mib:.0f} | {save} | {r.p50_ms:.2f} | {r.p95_ms:.2f} "
            f"| {r.batch_qps:,.0f} | {r.top1_agreement:.1%} | {r.top10_recall:.1%} "
            f"| {r.mate_recall:.1%} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[100_000, 1_000_000], help="comma list")
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200, help="single-query latency runs")
    parser.add_argument("--batch", type=int, default=1000, help="queries in the batched call")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per-identity", type=int, default=4, help="templates per identity")
    parser.add_argument("--noise", type=float, default=0.045, help="per-dimension sigma")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads; 0 = all")
    parser.add_argument("--no-hnsw", action="store_true", help="skip the HNSW comparison")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--hnsw-ef-construction", type=int, default=40)
    parser.add_argument("--hnsw-ef-search", type=ints, default=[64, 128])
    parser.add_argument(
        "--hnsw-max-size", type=int, default=0, help="skip HNSW above this size; 0 = never"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="probity-bench-") as tmp:
        for size in args.sizes:
            rows.extend(run_size(args, size, Path(tmp)))
    print(table(rows))
    report = {
        "benchmark": "index_search",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
            # Other work on the machine skews timings: check these before trusting a run.
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_s": time.perf_counter() - started,
        "results": [asdict(r) for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} in {report['total_s']:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
