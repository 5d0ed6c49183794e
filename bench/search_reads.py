"""What a search reads from storage, and how long it takes, on a home filled by
``bench/fill_home.py``: N searches through the real services, as
``bench/scale_through_product.py`` runs them (its bench engine: face analysis returns the
probe's template), each for a subject no earlier pass of this script searched.

Reported: p50 / p95 of the search, everything but detection, and the bytes the process had
read from storage a search (``/proc/self/io`` ``read_bytes``: what missed the page cache).
``--drop-caches`` (root only) empties the kernel's page cache first, so every database page
a search needs is read from disk: the state of a gallery larger than RAM, measured on one
that is not, and the same for two versions of the code run one after the other on the same
home (the A/B of bench/README.md, "Reads a search makes"). ``--profile FILE``: cProfile
instead (its timings are then not the figures to report).

    .venv/bin/python bench/search_reads.py --home /tmp/h4m --subjects 3940000 \\
        [--searches 100] [--drop-caches] [--investigator] [--seed 1] [--out result.json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fill_home import probe, reference
from bench.scale_through_product import ACTOR, disk_read_bytes, engines_for, image, investigator
from probity.config import Settings
from probity.domain.faces import ModelVersion
from probity.services.container import build_services
from probity.services.indexes import IndexSlot


def drop_page_cache() -> None:
    """Write dirty pages out, then drop the page cache (Linux, root)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--subjects", type=int, required=True)
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="which subjects are searched")
    parser.add_argument("--drop-caches", action="store_true")
    parser.add_argument(
        "--investigator",
        action="store_true",
        help="search as a signed-in investigator (rate limits counted), not the operator; "
        "at most 28 searches then (the per-person limit is 30 a minute, 2 warm up)",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile table here instead")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.investigator and args.searches > 28:
        parser.error("--investigator: at most 28 searches (30 a minute a person, 2 warm up)")
    settings = Settings(home=args.home)
    filled = json.loads((args.home / "bench-fill.json").read_text())
    name, version = str(filled["model"]).split("@", 1)
    engines, engine = engines_for(settings, ModelVersion(name, version, 128))
    services = build_services(settings, engines=engines)
    gallery = services.galleries.all()[0]
    services.indexes.size(IndexSlot.of(gallery))
    wait = getattr(services.indexes.get(IndexSlot.of(gallery)), "wait_for_fast_stage", None)
    if wait is not None:
        wait()
    actor = investigator("bench-reads") if args.investigator else ACTOR
    case = f"READS-{int(time.time())}"
    services.cases.open(
        actor=actor,
        reference=case,
        offence="fraud",
        justification="scale benchmark, reads a search makes",
        authorisation=f"A-{case}",
    )
    # Subjects of this seed only (another seed: other subjects, not cached by this run).
    rng = np.random.default_rng([args.seed, 99_991])
    wanted = [int(x) for x in rng.integers(0, args.subjects, args.searches + 2)]
    probes = [
        engine.register(image(50_000_000 + 1000 * args.seed + n), probe(7, i, draw=n + 1))
        for n, i in enumerate(wanted)
    ]
    services.search.search(actor=actor, case_reference=case, probe=probes[0])  # code paths
    if args.drop_caches:
        drop_page_cache()
        # One search to read back the libraries and the small tables every search reads.
        services.search.search(actor=actor, case_reference=case, probe=probes[1])
    right, times, reads = 0, [], []
    profile = cProfile.Profile() if args.profile else None
    read_before = disk_read_bytes()
    if profile is not None:
        profile.enable()
    for i, data in zip(wanted[2:], probes[2:], strict=True):
        read = disk_read_bytes()  # outside the timed span: a /proc read
        started = time.perf_counter()
        found = services.search.search(actor=actor, case_reference=case, probe=data)
        times.append((time.perf_counter() - started) * 1000)
        reads.append((disk_read_bytes() - read) / 1024)
        top = found.faces[0].candidates[0].subject_reference if found.faces else None
        right += int(top == reference(i))
    if profile is not None:
        profile.disable()
    result: dict[str, Any] = {
        "home": str(args.home),
        "subjects": args.subjects,
        "searches": len(times),
        "seed": args.seed,
        "dropped_caches": args.drop_caches,
        "investigator": args.investigator,
        "search_ms_p50": round(float(np.percentile(times, 50)), 1),
        "search_ms_p95": round(float(np.percentile(times, 95)), 1),
        "disk_read_kib_a_search": round((disk_read_bytes() - read_before) / 1024 / len(times), 1),
        # The first searches after a cold start also read the upper levels of every B-tree
        # they touch, which later searches find cached: the mean over 25 searches is not
        # the mean over 200 (the "loaded search" of bench/README.md).
        "disk_read_kib_searches_1_to_25": round(float(np.mean(reads[:25])), 1),
        "disk_read_kib_searches_26_on": round(float(np.mean(reads[25:])), 1)
        if reads[25:]
        else None,
        "search_ms_p50_searches_1_to_25": round(float(np.percentile(times[:25], 50)), 1),
        "true_subject_first": f"{right}/{len(times)}",
        "loadavg_after": os.getloadavg(),
    }
    services.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if profile is not None and args.profile is not None:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(60)
        args.profile.write_text(text.getvalue())


if __name__ == "__main__":
    main()
