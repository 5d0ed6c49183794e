"""Scale figures measured through the product: a home filled by bench/fill_home.py with N
synthetic subjects, then the real services (SQLite or PostgreSQL, the default "ivf" index,
sealed templates, audit, suppression list, rate limits) with one stand-in: face analysis
returns the probe's template directly ("everything but detection", as the issue asks).

Measured, in order:
- index build from the template log (the first open of a home whose index was never saved:
  every template decrypted) -- a one-off, reported for completeness;
- server start: ``build_services`` plus opening the saved index (what a restarted server
  does before its first search), and that first search;
- ``search`` of a one-face probe, p50 / p95 over ``--queries`` probes, each a fresh template
  of a random enrolled subject (the true subject must rank first: reported);
- enrolling one more subject: the whole call and the index part (``IndexSet.catch_up``);
- erasing one subject: the whole call and its parts (key rotation, index refresh of every
  gallery);
- disk per face (database + index files; blobs apart: the loader writes none).

    python bench/scale_through_product.py --home /tmp/h1m --subjects 1000000 \\
        [--queries 200] [--database-url URL] [--out bench/results/scale-1m.json]

The home is filled only if it does not exist yet (the fill rate is bench/fill_home.py's).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fill_home import centres, fill, probe, reference
from probity.config import Settings
from probity.domain.faces import ModelVersion
from probity.engine.registry import EngineSet, build_engine_set
from probity.services.container import build_services
from probity.services.indexes import IndexSet, IndexSlot
from tests.fakes import FakeEngine

ACTOR = "bench-loader"


class BenchEngine(FakeEngine):
    """The test suite's fake engine, under the gallery's own model: each registered image
    shows one face whose template is the one given."""

    def __init__(self, model: ModelVersion) -> None:
        super().__init__()
        self._model = model

    @property
    def model(self) -> ModelVersion:
        return self._model


def engines_for(settings: Settings, model: ModelVersion) -> tuple[EngineSet, BenchEngine]:
    """The installed models' cards (their FMR tables), with analysis by the bench engine."""
    real = build_engine_set(
        settings.engine, home_models=settings.models_dir, calibration_dir=settings.calibration_dir
    )
    engine = BenchEngine(model)
    cards = {card.model.key: card for card in real.cards()}
    return EngineSet({model.key: engine}, default=model.key, cards=cards), engine


def image(n: int) -> bytes:
    """A distinct small PNG per n (the fake engine keys faces by pixels)."""
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def timed(store: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store[name] = store.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def disk_bytes(settings: Settings) -> dict[str, int]:
    db = sum(p.stat().st_size for p in settings.home.glob("probity.db*"))
    index = sum(p.stat().st_size for p in settings.index_dir.glob("*") if p.is_file())
    return {"database": db, "index": index}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--no-erase", action="store_true", help="skip step 5 (an erasure rotates the keys)"
    )
    args = parser.parse_args()
    settings = Settings(home=args.home, database_url=args.database_url)
    result: dict[str, Any] = {"subjects": args.subjects, "cpus": os.cpu_count()}
    if not (args.home / "bench-fill.json").exists():
        result["fill"] = fill(settings, subjects=args.subjects, seed=args.seed, progress=False)
    filled = json.loads((args.home / "bench-fill.json").read_text())
    model_name, model_version = str(filled["model"]).split("@", 1)
    model = ModelVersion(model_name, model_version, 128)

    # 1. The index's first build, from the template log (only if it was never saved).
    engines, engine = engines_for(settings, model)
    services = build_services(settings, engines=engines)
    gallery = services.galleries.all()[0]
    slot = IndexSlot.of(gallery)
    started = time.perf_counter()
    services.indexes.size(slot)
    result["index_first_build_s"] = round(time.perf_counter() - started, 2)
    services.close()

    # 2. Server start and first search.
    engines, engine = engines_for(settings, model)
    started = time.perf_counter()
    services = build_services(settings, engines=engines)
    vectors = services.indexes.size(slot)
    result["start_s"] = round(time.perf_counter() - started, 2)
    result["index_vectors"] = vectors
    case = f"SCALE-{int(time.time())}"
    services.cases.open(
        actor=ACTOR,
        reference=case,
        offence="fraud",
        justification="scale benchmark",
        authorisation=f"A-{case}",
    )
    rng = np.random.default_rng(args.seed + 1234)
    wanted = [int(x) for x in rng.integers(0, args.subjects, args.queries + 1)]
    probes = [
        engine.register(image(10_000_000 + n), probe(args.seed, i, draw=n + 1))
        for n, i in enumerate(wanted)
    ]
    started = time.perf_counter()
    first = services.search.search(actor=ACTOR, case_reference=case, probe=probes[0])
    result["first_search_ms"] = round((time.perf_counter() - started) * 1000, 1)
    del first

    # 3. Searches.
    times, right = [], 0
    for i, data in zip(wanted[1:], probes[1:], strict=True):
        started = time.perf_counter()
        found = services.search.search(actor=ACTOR, case_reference=case, probe=data)
        times.append((time.perf_counter() - started) * 1000)
        top = found.faces[0].candidates[0].subject_reference if found.faces else None
        right += int(top == reference(i))
    result["search_ms_p50"] = round(float(np.percentile(times, 50)), 1)
    result["search_ms_p95"] = round(float(np.percentile(times, 95)), 1)
    result["true_subject_first"] = f"{right}/{len(times)}"

    # 4. One more enrolment.
    parts: dict[str, float] = {}
    indexes: IndexSet = services.indexes  # type: ignore[assignment]
    indexes.catch_up = timed(parts, "index", indexes.catch_up)  # type: ignore[method-assign]
    fresh = centres(args.seed + 1, 0, 1)[0]
    started = time.perf_counter()
    services.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery.name,
        subject=f"bench-extra-{int(time.time())}",
        image=engine.register(image(20_000_000 + int(time.time()) % 1_000_000), fresh),
        provenance={
            "source": "bench/scale_through_product.py",
            "lawful_basis": "law_enforcement",
            "collected_at": "2026-11-01",
            "jurisdiction": "GB",
        },
    )
    result["enrol_one_ms"] = round((time.perf_counter() - started) * 1000, 1)
    result["enrol_one_index_ms"] = round(parts.get("index", 0.0) * 1000, 1)

    # 5. Erasing one subject.
    if args.no_erase:
        services.close()
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    parts = {}
    vault = services.erasure.vault  # type: ignore[attr-defined]
    vault.rotate = timed(parts, "key_rotation", vault.rotate)
    indexes.refresh_all = timed(parts, "index_refresh", indexes.refresh_all)  # type: ignore[method-assign]
    started = time.perf_counter()
    services.erasure.erase(
        actor=ACTOR, gallery=gallery.name, reference=reference(wanted[1]), reason="benchmark"
    )
    result["erase_one_s"] = round(time.perf_counter() - started, 3)
    result["erase_parts_s"] = {k: round(v, 3) for k, v in parts.items()}
    result["disk_bytes"] = disk_bytes(settings)
    result["disk_bytes_per_face"] = round(
        sum(result["disk_bytes"].values()) / max(1, args.subjects), 1
    )
    services.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
