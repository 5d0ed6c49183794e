"""What forwarding an index call to the index process costs: the same searches through the
in-process ``IndexSet`` and through an ``IndexClient`` talking to a real index process
(services/index_server.py), on a home filled by bench/fill_home.py.

Each search is one probe of a known subject (fill_home.probe), k = 40 (what a search asks
for: top_k 10 x OVERFETCH 4); both sides have their index open and caught up before the
timing starts; the two are alternated query by query. Reported: median and p95 per call in
ms, and the difference (the socket round trip, the JSON header and the copies of the query
and the hits).

Usage::

    .venv/bin/python bench/index_forwarding.py --home /tmp/h1m [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fill_home  # a sibling script, not a package

from probity.config import Settings
from probity.services.container import build_services
from probity.services.index_server import INDEX_SOCKET_ENV, IndexProcess
from probity.services.indexes import IndexSlot

OUT = Path(__file__).resolve().parent / "results" / "index_forwarding.json"


def timed(search: Any, probes: list[np.ndarray], slot: IndexSlot, k: int) -> list[float]:
    out = []
    for p in probes:
        start = time.perf_counter()
        search(slot, p[None, :], k)
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=40)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    fill = json.loads((args.home / fill_home.FILL_FILE).read_text())
    os.environ.pop(INDEX_SOCKET_ENV, None)
    settings = Settings(home=args.home)
    local = build_services(settings)
    slot = IndexSlot.of(local.galleries.all()[0])
    rng = np.random.default_rng(1)
    probes = [
        fill_home.probe(fill["seed"], int(i))
        for i in rng.integers(0, fill["subjects"], args.queries)
    ]
    process = IndexProcess(settings)
    process.start(supervise=False)
    try:
        os.environ[INDEX_SOCKET_ENV] = str(process.path)
        remote = build_services(settings)
        os.environ.pop(INDEX_SOCKET_ENV, None)
        local.indexes.size(slot)  # open and catch up both before timing
        remote.indexes.size(slot)
        timed(local.indexes.search, probes[:20], slot, args.k)
        timed(remote.indexes.search, probes[:20], slot, args.k)
        local_ms: list[float] = []
        remote_ms: list[float] = []
        for probe in probes:  # alternated, so that load from elsewhere hits both alike
            local_ms += timed(local.indexes.search, [probe], slot, args.k)
            remote_ms += timed(remote.indexes.search, [probe], slot, args.k)
        in_process, forwarded = summary(local_ms), summary(remote_ms)
    finally:
        process.stop()
    result = {
        "templates": fill["subjects"] * fill["templates_per_subject"],
        "backend": settings.index_backend,
        "k": args.k,
        "queries": args.queries,
        "in_process": in_process,
        "index_process": forwarded,
        "added_p50_ms": round(forwarded["p50_ms"] - in_process["p50_ms"], 3),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
