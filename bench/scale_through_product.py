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
- the index alone on the same probes: ``IndexSet.search`` at k = 10 (p50 / p95), and its
  k = 40 candidates (what the search service asks for) re-scored exactly, compared with an
  exact search over every template (replayed from the loader's generators,
  ``fill_home.templates``): top-1 identical, the exact top 10 kept, the person's own
  template kept (``--no-accuracy`` skips this: it needs 4 bytes x 128 a face of memory);
- the index's memory: RSS of a fresh process before and after it opens the saved index;
- enrolling one more subject: the whole call and the index part (``IndexSet.catch_up``);
- erasing one subject: the whole call and its parts (key rotation, index refresh of every
  gallery);
- disk per face (database + index files; blobs apart: the loader writes none);
- then (``--objectors`` / ``--past-searches``, after the erasure): a signed-in
  investigator's search, so the rate limits count their and their organisation's searches
  on every call, with M objectors on the suppression list and P past searches on record
  (rows written directly, sealed as the services seal them; most of them older than the
  rate-limit window, as on a real deployment).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fill_home import centres, fill, probe, reference, templates
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


class Exact:
    """Exact search over every template of a loader-filled home (replayed from the loader's
    generators, ``fill_home.templates``), done once, against which any set of index
    candidates is scored (``score``): the main run's and the nprobe sweep's."""

    def __init__(self, services: Any, filled: dict[str, Any], queries: np.ndarray) -> None:
        from sqlalchemy import func, select

        from probity.storage.tables import TemplateRow

        n = int(filled["subjects"]) * int(filled["templates_per_subject"])
        with services.db.read() as session:
            first, last, count = session.execute(
                select(func.min(TemplateRow.id), func.max(TemplateRow.id), func.count())
            ).one()
        # The loader's templates are ids first .. first + n - 1; a home this bench ran on
        # before has one more enrolment after them and one erased subject among them (a gap
        # that no candidate can name; exact search here still counts it: an upper bound on
        # misses).
        self.skipped: str | None = None
        if int(last) - int(first) + 1 < n or int(count) < n - 1:
            self.skipped = f"template ids {first}..{last} ({count}) are not the loader's"
            return
        started = time.perf_counter()
        every = templates(
            int(filled["seed"]),
            int(filled["subjects"]),
            per_subject=int(filled["templates_per_subject"]),
            noise=float(filled["noise"]),
            batch=int(filled["batch"]),
        )
        every /= np.linalg.norm(every, axis=1, keepdims=True)
        q = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        best = np.full((q.shape[0], 10), -np.inf, np.float32)
        best_at = np.zeros((q.shape[0], 10), np.int64)
        for start in range(0, n, 500_000):  # exact top 10, half a million rows at a time
            scores = every[start : start + 500_000] @ q.T  # (rows, queries)
            top = np.argpartition(-scores, 10, axis=0)[:10].T  # (queries, 10)
            s = np.take_along_axis(scores.T, top, axis=1)
            both_s = np.concatenate([best, s], axis=1)
            both_at = np.concatenate([best_at, top + start], axis=1)
            keep = np.argsort(-both_s, axis=1)[:, :10]
            best = np.take_along_axis(both_s, keep, axis=1)
            best_at = np.take_along_axis(both_at, keep, axis=1)
        self.every, self.q, self.best_at, self.first = every, q, best_at, int(first)
        self.per = int(filled["templates_per_subject"])
        self.seconds = round(time.perf_counter() - started, 1)

    def score(self, subjects: list[int], candidates: list[list[int]]) -> dict[str, Any]:
        """The index's k = 40 candidates re-scored exactly (as ``services/search.py``
        re-scores them from the sealed templates) against the exact top 10."""
        if self.skipped is not None:
            return {"skipped": self.skipped}
        same_top1, kept10, own_exact, own_kept = 0, 0.0, 0, 0
        per = self.per
        for row, (ids, subject) in enumerate(zip(candidates, subjects, strict=True)):
            rows = np.asarray(ids, np.int64) - self.first
            rescored = rows[np.argsort(-(self.every[rows] @ self.q[row]), kind="stable")][:10]
            exact = self.best_at[row]
            same_top1 += int(rescored[0] == exact[0])
            kept10 += len(set(rescored.tolist()) & set(exact.tolist())) / 10
            own = set(range(subject * per, (subject + 1) * per))
            in_exact = own & set(exact.tolist())
            own_exact += len(in_exact)
            own_kept += len(in_exact & set(rescored.tolist()))
        queries_n = len(candidates)
        return {
            "queries": queries_n,
            "top1_identical_to_exact": round(same_top1 / queries_n, 4),
            "exact_top10_kept": round(kept10 / queries_n, 4),
            "own_templates_in_top10_vs_exact": round(own_kept / max(1, own_exact), 4),
            "exact_search_s": self.seconds,
        }


def index_pass(
    indexes: Any, slot: IndexSlot, queries: np.ndarray
) -> tuple[dict[str, float], list[list[int]]]:
    """``IndexSet.search`` at k = 10 on each query (timed, p50 / p95 in ms) and its k = 40
    candidates (what the search service asks for)."""
    index_times = []
    candidates = []
    for q in queries:
        started = time.perf_counter()
        indexes.search(slot, q[None, :], 10)
        index_times.append((time.perf_counter() - started) * 1000)
        candidates.append([h.id for h in indexes.search(slot, q[None, :], 40)[0]])
    times = {
        "p50": round(float(np.percentile(index_times, 50)), 2),
        "p95": round(float(np.percentile(index_times, 95)), 2),
    }
    return times, candidates


def nprobe_sweep(
    indexes: Any,
    slot: IndexSlot,
    queries: np.ndarray,
    subjects: list[int],
    exact: Exact | None,
    nprobes: list[int],
) -> list[dict[str, Any]]:
    """The same queries through the product's ivf index at other nprobe values, and with
    FAISS's fast-scan implementation 14 (a single query's lists split across the threads)
    as well as its default: the measurement a change of ``NPROBE_MAX`` or of the fast
    stage's implementation is decided on. The index's own settings are restored after."""
    import dataclasses

    index = indexes.get(slot)
    params = getattr(index, "_params", None)
    fast = getattr(index, "_fast", None)
    if params is None or fast is None or not fast.ready:
        return [{"skipped": "not an ivf index with its fast stage ready"}]
    out = []
    implem = int(fast._index.implem)
    try:
        for nprobe in nprobes:
            for imp in (0, 14):
                index._params = dataclasses.replace(params, nprobe=nprobe)
                fast._index.implem = imp
                times, candidates = index_pass(indexes, slot, queries)
                row: dict[str, Any] = {"nprobe": nprobe, "implem": imp, "k10_ms": times}
                if exact is not None:
                    row["accuracy"] = exact.score(subjects, candidates)
                out.append(row)
    finally:
        index._params = params
        fast._index.implem = implem
    return out


def fast_stage_sweep(
    indexes: Any,
    slot: IndexSlot,
    queries: np.ndarray,
    subjects: list[int],
    exact: Exact | None,
    variants: list[tuple[int, int, int]],
) -> list[dict[str, Any]]:
    """The same queries with other fast stages: each variant is (sub-quantisers, nprobe,
    REFINE) -- the 4-bit code's size (PQ_M: 32 sub-quantisers = 16 bytes a vector), the
    lists probed, and fast-stage candidates a result (REFINE_MIN scaled alike). A stage
    with other sub-quantisers is trained and built here, beside the live one, from the same
    SQ8 codes (as the product builds its own), and swapped in for its passes. What a change
    of ``PQ_M`` / ``REFINE`` is decided on; everything is restored after."""
    import dataclasses

    import probity.index.ivf_index as ivf_module
    from probity.index.ivf_fast import FastStage

    index = indexes.get(slot)
    params = getattr(index, "_params", None)
    live = getattr(index, "_fast", None)
    if params is None or live is None or not live.ready:
        return [{"skipped": "not an ivf index with its fast stage ready"}]
    refine, refine_min = ivf_module.REFINE, ivf_module.REFINE_MIN
    stages: dict[int, tuple[Any, float]] = {}
    out = []
    try:
        for m, nprobe, per in variants:
            if m not in stages:
                started = time.perf_counter()
                stage = FastStage(index._index, index._faiss, sub_quantisers=m)
                stage.train(stage.training_sample())
                stage.build(stage.nlist)
                stages[m] = (stage, time.perf_counter() - started)
            stage, built_s = stages[m]
            index._fast = stage
            index._params = dataclasses.replace(params, nprobe=nprobe)
            ivf_module.REFINE, ivf_module.REFINE_MIN = per, 32 * per
            times, candidates = index_pass(indexes, slot, queries)
            row: dict[str, Any] = {
                "sub_quantisers": m,
                "nprobe": nprobe,
                "refine": per,
                "refine_min": 32 * per,
                "stage_build_s": round(built_s, 1),
                "k10_ms": times,
            }
            if exact is not None:
                row["accuracy"] = exact.score(subjects, candidates)
            out.append(row)
            print(json.dumps(row), flush=True)
    finally:
        index._fast = live
        index._params = params
        ivf_module.REFINE, ivf_module.REFINE_MIN = refine, refine_min
    return out


_RSS_CODE = """
import json, sys
from pathlib import Path
from probity.config import Settings
from probity.services.container import build_services
from probity.services.indexes import IndexSlot

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

services = build_services(Settings(home=Path(sys.argv[1])))
slot = IndexSlot.of(services.galleries.all()[0])
before = rss()
vectors = services.indexes.size(slot)
# The ivf index's fast stage is built in the background after opening: count it too.
wait = getattr(services.indexes.get(slot), "wait_for_fast_stage", None)
if wait is not None:
    wait()
after = rss()
print(json.dumps({"vectors": vectors, "rss_before": before, "rss_after": after}))
"""


def index_rss(settings: Settings) -> dict[str, Any]:
    """RSS of a fresh process before and after it opens the saved index (one process: the
    index process, or the only worker, holds the one copy)."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _RSS_CODE, str(settings.home)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    got["bytes_per_face"] = round(
        (got["rss_after"] - got["rss_before"]) / max(1, got["vectors"]), 1
    )
    return dict(got)


def disk_read_bytes() -> int:
    """Bytes this process has had read from storage so far (Linux ``/proc/self/io``,
    ``read_bytes``: what missed the page cache), or -1 where that is not available. A
    search's share of it is what the database costs once it is larger than the cache."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


@contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """With ``--profile DIR``: cProfile the block and write its 40 costliest calls (by
    cumulative time) to ``DIR/<name>.txt``. Profiling slows Python code, so the timings
    measured inside are then not the figures to report."""
    if directory is None:
        yield
        return
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(40)
        (directory / f"{name}.txt").write_text(text.getvalue())


def investigator(username: str) -> Any:
    """A signed-in, trained investigator of a law-enforcement organisation (not stored: the
    services check the actor's roles and training, so the rate limits count their
    searches)."""
    from datetime import UTC, datetime, timedelta

    from probity.domain.accounts import Actor, OrganisationKind, Role
    from probity.domain.ids import new_id

    return Actor(
        user_id=new_id(),
        organisation_id=new_id(),
        organisation_kind=OrganisationKind.LAW_ENFORCEMENT,
        roles=frozenset({Role.INVESTIGATOR}),
        approved=True,
        training_expires=datetime.now(UTC) + timedelta(days=365),
        username=username,
        organisation_name="bench-force",
    )


def loaded_search(
    services: Any,
    engine: BenchEngine,
    args: argparse.Namespace,
    model_key: str,
) -> dict[str, Any]:
    """Step 6: searches by a signed-in investigator (rate limits counted on each call) with
    ``--objectors`` on the suppression list and ``--past-searches`` on record."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from bench.suppression_cost import _seed
    from probity.domain.ids import new_id
    from probity.storage.tables import SearchRow

    actor = investigator("bench-investigator")
    case = f"LOADED-{int(time.time())}"
    opened = services.cases.open(
        actor=actor,
        reference=case,
        offence="fraud",
        justification="scale benchmark, loaded",
        authorisation=f"A-{case}",
    )
    started = time.perf_counter()
    if args.objectors:
        from sqlalchemy import update

        from probity.storage.tables import SuppressionRow

        _seed(services, "", args.objectors, 0)
        # _seed writes the rows under the test engine's model; make them the gallery's.
        with services.db.transaction() as session:
            session.execute(update(SuppressionRow).values(model_key=model_key))
    now = datetime.now(UTC)
    rng = np.random.default_rng(11)
    done = 0
    while done < args.past_searches:
        count = min(50_000, args.past_searches - done)
        ages = rng.uniform(3600, 365 * 86400, count)  # older than the rate-limit window
        rows = [
            {
                "id": new_id(),
                "case_id": opened.id,
                "at": now - timedelta(seconds=float(a)),
                "actor": actor.username,
                "probe_sha256": "0" * 64,
                "galleries": ["synthetic"],
                "model_key": model_key,
                "threshold": {},
                "top_k": 10,
                "outcome": "candidates",
                "faces": [],
                "user_id": actor.user_id if n % 4 == 0 else new_id(),
                "organisation_id": actor.organisation_id,
            }
            for n, a in enumerate(ages)
        ]
        with services.db.transaction() as session:
            session.execute(insert(SearchRow), rows)
        done += count
    seeded_s = time.perf_counter() - started
    # Subjects no earlier step searched (step 3's are in the page cache), so that this
    # step compares with step 3 and with bench/search_reads.py at the same count.
    fresh = np.random.default_rng([args.seed, 4321])
    wanted = [int(x) for x in fresh.integers(0, args.subjects, 25)]
    probes = [
        engine.register(image(30_000_000 + n), probe(args.seed, i, draw=n + 1))
        for n, i in enumerate(wanted)
    ]
    times, right = [], 0
    read_before = disk_read_bytes()
    # 25: under the per-person limit of 30 searches a minute (the searches counted here).
    with profiled(args.profile, "loaded-search"):
        for i, data in zip(wanted, probes, strict=True):
            started = time.perf_counter()
            found = services.search.search(actor=actor, case_reference=case, probe=data)
            times.append((time.perf_counter() - started) * 1000)
            top = found.faces[0].candidates[0].subject_reference if found.faces else None
            right += int(top == reference(i))
    return {
        "objectors": args.objectors,
        "past_searches": args.past_searches,
        "seeding_s": round(seeded_s, 1),
        "search_ms_p50": round(float(np.percentile(times, 50)), 1),
        "search_ms_p95": round(float(np.percentile(times, 95)), 1),
        "search_disk_read_kib_mean": round((disk_read_bytes() - read_before) / 1024 / 25, 1),
        "true_subject_first": f"{right}/{len(times)}",
    }


def reload_after_other_save(indexes: IndexSet, slot: IndexSlot, query: np.ndarray) -> Any:
    """A second ``IndexSet`` over the same files (what a CLI process beside the server
    holds) takes one template out and puts it back (its vector read from the database, so
    the index still matches it) and saves: the segment holding it is rewritten. Then the
    bench's own ``IndexSet`` is asked for the index, as the server's next search asks:
    the time of that call, and whether the index object was kept (reloaded in place) or
    opened anew."""
    import gc

    assert indexes.log is not None
    mine = indexes.get(slot)
    template_id = indexes.search(slot, query[None, :], 1)[0][0].id
    found, vectors = indexes.log.vectors([template_id])
    other = IndexSet(
        directory=indexes.directory, backend=indexes.backend, seal=indexes.seal, log=indexes.log
    )
    started = time.perf_counter()
    theirs = other.get(slot)
    open_s = time.perf_counter() - started
    theirs.remove(np.asarray([template_id], np.int64))
    theirs.add(np.asarray(found, np.int64), np.stack(vectors))
    theirs.save()
    del theirs, other
    gc.collect()
    started = time.perf_counter()
    after = indexes.get(slot)
    took = time.perf_counter() - started
    hit = indexes.search(slot, np.stack(vectors), 1)[0][0].id
    return {
        "other_process_open_s": round(open_s, 2),
        "next_get_ms": round(took * 1000, 1),
        "kept_in_place": after is mine,
        "template_found_after": hit == template_id,
    }


def erase_one(services: Any, wanted: list[int], gallery: str, indexes: IndexSet) -> dict[str, Any]:
    """Step 5: erase one subject (the first of ``wanted`` an earlier run did not erase)."""
    from probity.errors import SubjectNotFound

    parts: dict[str, float] = {}
    vault = services.erasure.vault
    vault.rotate = timed(parts, "key_rotation", vault.rotate)
    indexes.refresh_all = timed(parts, "index_refresh", indexes.refresh_all)  # type: ignore[method-assign]
    started = time.perf_counter()
    for chosen in wanted:
        started = time.perf_counter()
        try:
            services.erasure.erase(
                actor=ACTOR, gallery=gallery, reference=reference(chosen), reason="benchmark"
            )
        except SubjectNotFound:
            parts.clear()
            continue
        break
    return {
        "erase_one_s": round(time.perf_counter() - started, 3),
        "erase_parts_s": {k: round(v, 3) for k, v in parts.items()},
    }


class Checkpointed(dict[str, Any]):
    """The result, written to ``--out`` after every figure, so a run stopped part way (a
    10M run takes most of an hour after its first build) keeps what it measured."""

    def __init__(self, path: Path | None, **items: Any) -> None:
        super().__init__(**items)
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._write()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._write()

    def _write(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self, indent=2) + "\n")


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
    parser.add_argument(
        "--no-accuracy", action="store_true", help="skip the exact comparison (step 3b)"
    )
    parser.add_argument(
        "--sweep",
        default="",
        help="nprobe values, comma-separated, to measure the index at besides its own (3c)",
    )
    parser.add_argument(
        "--fast-sweep",
        default="",
        help="fast-stage variants m:nprobe:refine, comma-separated, e.g. 32:1536:2,16:1536:2 (3d)",
    )
    parser.add_argument("--objectors", type=int, default=0, help="step 6: suppression rows")
    parser.add_argument("--past-searches", type=int, default=0, help="step 6: stored searches")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="step 1 only: build and save the index, print its time, stop (a later run "
        "then starts at step 2)",
    )
    parser.add_argument(
        "--profile", type=Path, help="write cProfile tables of steps 3 and 6 to this folder"
    )
    args = parser.parse_args()
    settings = Settings(home=args.home, database_url=args.database_url)
    result = Checkpointed(args.out, subjects=args.subjects, cpus=os.cpu_count())
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
    if args.build_only:
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return

    # 2. Server start and first search.
    engines, engine = engines_for(settings, model)
    started = opened_at = time.perf_counter()
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
    # The ivf index builds its 4-bit fast stage in the background after opening (the SQ8
    # scan answers meanwhile): wait for it, so the searches below measure the steady state.
    wait = getattr(services.indexes.get(slot), "wait_for_fast_stage", None)
    if wait is not None:
        wait()
        result["fast_stage_ready_s"] = round(time.perf_counter() - opened_at, 1)

    # 3. Searches.
    times, right = [], 0
    read_before = disk_read_bytes()
    with profiled(args.profile, "search"):
        for i, data in zip(wanted[1:], probes[1:], strict=True):
            started = time.perf_counter()
            found = services.search.search(actor=ACTOR, case_reference=case, probe=data)
            times.append((time.perf_counter() - started) * 1000)
            top = found.faces[0].candidates[0].subject_reference if found.faces else None
            right += int(top == reference(i))
    result["search_ms_p50"] = round(float(np.percentile(times, 50)), 1)
    result["search_ms_p95"] = round(float(np.percentile(times, 95)), 1)
    if read_before >= 0:
        result["search_disk_read_kib_mean"] = round(
            (disk_read_bytes() - read_before) / 1024 / len(times), 1
        )
    result["true_subject_first"] = f"{right}/{len(times)}"

    # 3b. The index alone, and its candidates against exact search.
    queries = np.stack([probe(args.seed, i, draw=n + 1) for n, i in enumerate(wanted)])[1:]
    times, candidates = index_pass(services.indexes, slot, queries)
    result["index_search_k10_ms_p50"] = times["p50"]
    result["index_search_k10_ms_p95"] = times["p95"]
    exact = None if args.no_accuracy else Exact(services, filled, queries)
    if exact is not None:
        result["accuracy"] = exact.score(wanted[1:], candidates)
    if args.sweep:
        nprobes = [int(x) for x in args.sweep.split(",")]
        result["sweep"] = nprobe_sweep(services.indexes, slot, queries, wanted[1:], exact, nprobes)
        print(json.dumps(result["sweep"]), flush=True)
    if args.fast_sweep:
        variants = [tuple(int(x) for x in v.split(":")) for v in args.fast_sweep.split(",")]
        result["fast_sweep"] = fast_stage_sweep(
            services.indexes,
            slot,
            queries,
            wanted[1:],
            exact,
            variants,  # type: ignore[arg-type]
        )
    del exact  # 4 bytes x 128 a face
    result["index_rss"] = index_rss(settings)

    # 4. More enrolments, one at a time (five: one sample said little in stop 22).
    indexes: IndexSet = services.indexes  # type: ignore[assignment]
    catch_up = indexes.catch_up
    whole, index_part, read_kib = [], [], []
    for n in range(5):
        read_before = disk_read_bytes()
        parts: dict[str, float] = {}
        indexes.catch_up = timed(parts, "index", catch_up)  # type: ignore[method-assign]
        fresh = centres(args.seed + 1, 0, 5)[n]
        started = time.perf_counter()
        services.enrolment.enrol(
            actor=ACTOR,
            gallery=gallery.name,
            subject=f"bench-extra-{int(time.time())}-{n}",
            image=engine.register(image(20_000_000 + int(time.time()) % 1_000_000 + n), fresh),
            provenance={
                "source": "bench/scale_through_product.py",
                "lawful_basis": "law_enforcement",
                "collected_at": "2026-11-01",
                "jurisdiction": "GB",
            },
        )
        whole.append(round((time.perf_counter() - started) * 1000, 1))
        index_part.append(round(parts.get("index", 0.0) * 1000, 1))
        read_kib.append(round((disk_read_bytes() - read_before) / 1024, 1))
    indexes.catch_up = catch_up  # type: ignore[method-assign]
    result["enrol_one_ms"] = float(np.median(whole))
    result["enrol_one_index_ms"] = float(np.median(index_part))
    result["enrol_each_ms"] = whole
    result["enrol_each_index_ms"] = index_part
    result["enrol_each_disk_read_kib"] = read_kib

    # 4b. Another process's save (a CLI enrolment beside the server): the server's index
    # takes in the changed segments (``IvfIndex.reload``) instead of opening the file anew.
    result["reload_after_other_save"] = reload_after_other_save(indexes, slot, queries[0])

    # 5. Erasing one subject.
    if not args.no_erase:
        result.update(erase_one(services, wanted[1:], gallery.name, indexes))
    result["disk_bytes"] = disk_bytes(settings)
    result["disk_bytes_per_face"] = round(
        sum(result["disk_bytes"].values()) / max(1, args.subjects), 1
    )
    if args.objectors or args.past_searches:
        result["loaded_search"] = loaded_search(services, engine, args, str(model.key))
    services.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
