"""The "ivf" backend (probity/index/ivf_index.py) against exact search, at N faces.

Synthetic identities, the hardest case the issue names (uniform): each of N/2 people has a
random unit centre in 128-d and two templates = centre + noise (cosine to the centre about
0.8, like two photos of one person under a good model); queries are fresh templates of
random enrolled people. For each query: the index's top ``k * OVERFETCH`` (40) candidates,
re-scored exactly (cosine on the float vectors, as the search service re-scores from the
sealed templates), compared with exact search over everything.

Reports: search p50/p95 (one query, k = 40 candidates), top-1 after re-scoring identical to
exact, the person's own templates found in the re-scored top 10, a save after adding one
vector (bytes written, ms), a remove + save, open time, RSS growth per vector.

    python bench/ivf_index.py --n 1000000 [--queries 500] [--out bench/results/ivf-1m.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from probity.index.ivf_index import IvfIndex, segment_files

DIM = 128
CANDIDATES = 40


class Seal:
    def current(self) -> tuple[int, bytes]:
        return 1, hashlib.sha256(b"bench").digest()

    def key(self, epoch: int) -> bytes:
        return hashlib.sha256(b"bench").digest()


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    people = args.n // 2
    centres = unit(rng.normal(size=(people, DIM)).astype(np.float32))
    owner = np.repeat(np.arange(people), 2)
    vectors = np.empty((args.n, DIM), np.float32)
    for start in range(0, args.n, 500_000):
        stop = min(args.n, start + 500_000)
        noise = rng.normal(scale=args.noise, size=(stop - start, DIM)).astype(np.float32)
        vectors[start:stop] = unit(centres[owner[start:stop]] + noise)
    ids = np.arange(args.n, dtype=np.int64)
    folder = Path(tempfile.mkdtemp(prefix="ivf-bench-"))
    before = rss_mib()
    t = time.perf_counter()
    index = IvfIndex(folder / "g.ivf", DIM, Seal())
    index.add(ids, vectors)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    index.save()
    save_all_s = time.perf_counter() - t
    held_mib = rss_mib() - before
    files = [*segment_files(folder / "g.ivf"), folder / "g.ivf"]
    disk = sum(p.stat().st_size for p in files)

    who = rng.choice(people, size=args.queries, replace=False)
    queries = unit(centres[who] + rng.normal(scale=args.noise, size=(args.queries, DIM)))
    times, top1, own = [], 0, 0
    for q, person in zip(queries, who, strict=True):
        t = time.perf_counter()
        hits = index.search(q[None, :], CANDIDATES)[0]
        times.append(time.perf_counter() - t)
        cand = np.asarray([h.id for h in hits], np.int64)
        rescored = cand[np.argsort(-(vectors[cand] @ q), kind="stable")]
        scores = vectors @ q
        top = np.argpartition(-scores, 10)[:10]
        exact = top[np.argsort(-scores[top])]
        top1 += int(rescored[0] == exact[0])
        mine = {2 * int(person), 2 * int(person) + 1} & set(exact.tolist())
        own += int(mine <= set(rescored[:10].tolist()))
    times_ms = np.asarray(times) * 1000

    # One enrolment: add one vector, save.
    extra = unit(rng.normal(size=(1, DIM)).astype(np.float32))
    names = {p.name for p in segment_files(folder / "g.ivf")}
    t = time.perf_counter()
    index.add([args.n + 1], extra)
    index.save()
    add_save_ms = (time.perf_counter() - t) * 1000
    new = [p for p in segment_files(folder / "g.ivf") if p.name not in names]
    add_bytes = sum(p.stat().st_size for p in new) + (folder / "g.ivf").stat().st_size

    # One erasure: remove two templates (one person), save.
    names = {p.name for p in segment_files(folder / "g.ivf")}
    t = time.perf_counter()
    index.remove([0, 1])
    index.save()
    remove_save_ms = (time.perf_counter() - t) * 1000
    new = [p for p in segment_files(folder / "g.ivf") if p.name not in names]
    remove_bytes = sum(p.stat().st_size for p in new) + (folder / "g.ivf").stat().st_size

    t = time.perf_counter()
    reopened = IvfIndex(folder / "g.ivf", DIM, Seal())
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    reopened.search(queries[:1], CANDIDATES)
    first_ms = (time.perf_counter() - t) * 1000
    # What a server holds for this index: RSS of a fresh process before and after opening it.
    root = str(Path(__file__).resolve().parent.parent)
    probe_code = (
        f"import sys; sys.path.insert(0, {root!r}); from bench.ivf_index import Seal, rss_mib; "
        "from probity.index.ivf_index import IvfIndex; import faiss, numpy; "
        "from pathlib import Path; a = rss_mib(); "
        f"i = IvfIndex(Path({str(folder / 'g.ivf')!r}), {DIM}, Seal()); print(rss_mib() - a)"
    )
    opened_mib = float(
        subprocess.run(
            [sys.executable, "-c", probe_code], capture_output=True, text=True, check=True
        ).stdout
    )
    params = index.params
    result = {
        "n": args.n,
        "params": None
        if params is None
        else {
            "nlist": params.nlist,
            "nprobe": params.nprobe,
            "segments": params.segments,
            "trained_on": params.trained_on,
        },
        "build_s": round(build_s, 1),
        "save_all_s": round(save_all_s, 2),
        "search_ms_p50": round(float(np.percentile(times_ms, 50)), 2),
        "search_ms_p95": round(float(np.percentile(times_ms, 95)), 2),
        "top1_same_as_exact": round(top1 / args.queries, 4),
        "own_templates_in_top10": round(own / args.queries, 4),
        "add_one_and_save_ms": round(add_save_ms, 1),
        "add_one_bytes_written": add_bytes,
        "remove_one_person_and_save_ms": round(remove_save_ms, 1),
        "remove_bytes_written": remove_bytes,
        "open_s": round(open_s, 2),
        "first_search_ms": round(first_ms, 2),
        "rss_bytes_per_vector_while_building": round(held_mib * 2**20 / args.n, 1),
        "rss_bytes_per_vector_opened": round(opened_mib * 2**20 / args.n, 1),
        "disk_bytes_per_vector": round(disk / args.n, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
