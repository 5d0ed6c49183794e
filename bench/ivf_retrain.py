"""Searches while the "ivf" index retrains (probity/index/ivf_index.py, ``_retrain``).

An IVF index trained at N vectors is grown past ``RETRAIN_GROWTH`` x N; the retraining
(decode every code, k-means, assign, re-lay the lists) then runs in a background thread
while this bench keeps searching and adding from the main thread, as a server's requests
would. Before the change the retraining ran inline, under the index lock: every search and
enrolment waited for it (about a minute at 1M on two cores).

Reports: how long the retraining took (from the add that started it to the swap), the
search latency during it (p50 / p95 / max, one query, k = 40), the adds made during it and
whether they are all in the new layout.

    python bench/ivf_retrain.py --n 250000 [--out bench/results/ivf-retrain.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ivf_index import Seal, unit
from probity.index import ivf_index
from probity.index.ivf_index import IvfIndex

DIM = 128


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=250_000, help="vectors at the first training")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    n = args.n
    grow = ivf_index.RETRAIN_GROWTH * n - n + 1000  # past RETRAIN_GROWTH x n
    first = unit(rng.standard_normal((n, DIM), dtype=np.float32))
    more = unit(rng.standard_normal((grow, DIM), dtype=np.float32))
    queries = unit(first[:200] + rng.normal(0, 0.045, (200, DIM)).astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        index = IvfIndex(Path(tmp) / "g.ivf", DIM, Seal())
        started = time.perf_counter()
        index.add(np.arange(n), first)  # flat -> IVF: trained inline, on n
        trained_s = time.perf_counter() - started
        params = index.params
        # Grow to just under the threshold, then the one add that starts the retraining.
        index.add(np.arange(n, n + grow - 1), more[:-1])
        started = time.perf_counter()
        index.add(np.asarray([n + grow - 1]), more[-1:])
        add_returned_ms = (time.perf_counter() - started) * 1000
        during, extra = [], 0
        while not index.wait_for_retraining(timeout=0):
            q = queries[len(during) % len(queries)][None, :]
            t = time.perf_counter()
            index.search(q, 40)
            during.append((time.perf_counter() - t) * 1000)
            if len(during) % 20 == 0:  # an enrolment now and then
                index.add(np.asarray([10_000_000 + extra]), queries[extra % 200][None, :])
                extra += 1
        retrain_s = time.perf_counter() - started
        held = set(index.ids().tolist())
        result = {
            "n_first_training": n,
            "first_training_s": round(trained_s, 1),
            "params_before": None if params is None else params.__repr__(),
            "params_after": None if index.params is None else index.params.__repr__(),
            "add_that_started_it_ms": round(add_returned_ms, 1),
            "retraining_s": round(retrain_s, 1),
            "searches_during": len(during),
            "search_ms_during_p50": round(float(np.percentile(during, 50)), 2) if during else None,
            "search_ms_during_p95": round(float(np.percentile(during, 95)), 2) if during else None,
            "search_ms_during_max": round(max(during), 1) if during else None,
            "adds_during": extra,
            "adds_during_all_kept": all(10_000_000 + i in held for i in range(extra)),
            "vectors": len(index),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
