"""Where a search's time goes on a filled home: cProfile of N searches through the real
services, as ``bench/scale_through_product.py`` runs them (its bench engine: face analysis
returns the probe's template), plus the storage bytes the searches read (``/proc/self/io``).

Separate from the scale bench because profiling slows Python code: the figures the scale
bench reports are measured without it, and this answers only "where", afterwards, on the
same home (with the objectors and past searches that bench's step 6 left there, a
signed-in investigator's searches count them as in step 6).

    .venv/bin/python bench/profile_search.py --home /tmp/h10m --subjects 10000000 \\
        [--searches 25] [--investigator] [--out /tmp/profile.txt]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fill_home import probe, reference
from bench.scale_through_product import ACTOR, disk_read_bytes, engines_for, image
from probity.config import Settings
from probity.domain.accounts import Actor, OrganisationKind, Role
from probity.domain.faces import ModelVersion
from probity.domain.ids import new_id
from probity.services.container import build_services
from probity.services.indexes import IndexSlot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--subjects", type=int, required=True)
    parser.add_argument("--searches", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--investigator",
        action="store_true",
        help="search as a signed-in investigator (rate limits counted), not the operator",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
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
    actor = ACTOR
    if args.investigator:
        actor = Actor(  # type: ignore[assignment]
            user_id=new_id(),
            organisation_id=new_id(),
            organisation_kind=OrganisationKind.LAW_ENFORCEMENT,
            roles=frozenset({Role.INVESTIGATOR}),
            approved=True,
            training_expires=datetime.now(UTC) + timedelta(days=365),
            username="bench-profiler",
            organisation_name="bench-force",
        )
    case = f"PROFILE-{int(time.time())}"
    services.cases.open(
        actor=actor,
        reference=case,
        offence="fraud",
        justification="scale benchmark, profiling searches",
        authorisation=f"A-{case}",
    )
    # Subjects no earlier pass searched (another seed): their rows are not in the page cache
    # because of an earlier search.
    rng = np.random.default_rng(args.seed + 99_991)
    wanted = [int(x) for x in rng.integers(0, args.subjects, args.searches + 1)]
    probes = [
        engine.register(image(50_000_000 + n), probe(args.seed, i, draw=n + 1))
        for n, i in enumerate(wanted)
    ]
    services.search.search(actor=actor, case_reference=case, probe=probes[0])  # warm-up
    right = 0
    read_before = disk_read_bytes()
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for i, data in zip(wanted[1:], probes[1:], strict=True):
        found = services.search.search(actor=actor, case_reference=case, probe=data)
        top = found.faces[0].candidates[0].subject_reference if found.faces else None
        right += int(top == reference(i))
    profile.disable()
    elapsed = time.perf_counter() - started
    text = io.StringIO()
    print(
        f"{args.searches} searches, {elapsed / args.searches * 1000:.1f} ms each under the "
        f"profiler, {(disk_read_bytes() - read_before) / 1024 / args.searches:.1f} KiB read "
        f"from storage each, true subject first {right}/{args.searches}",
        file=text,
    )
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(60)
    services.close()
    if args.out:
        args.out.write_text(text.getvalue())
    print(text.getvalue())


if __name__ == "__main__":
    main()
