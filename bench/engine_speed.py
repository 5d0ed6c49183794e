"""Engine speed: the default engine (YuNet + SFace on ONNX Runtime) against dlib, per stage
and end to end, on the same photos in the same run, reported as ratios.

Per stage, in this process, models loaded first (each photo ``--repeat`` times, the engines
interleaved photo by photo so both see the same machine load; the median is kept):

- **decode**: Pillow decode with EXIF orientation and the upload limits (shared by both).
- **detect**: YuNet at ``yunet_max_side`` 640 (SFace engine) / HOG with upsample 1, then the
  CNN where HOG finds nothing (dlib's AUTO mode).
- **align**: the 112 × 112 similarity warp (SFace) / 5-point shape predictor, chip and the
  landmark-drift probe (dlib), per face.
- **embed**: one chip through the recogniser, per face.
- **analyse**: ``engine.analyse`` of the decoded photo, what search and enrolment call (its
  quality assessment included); "other" is analyse minus detect + align + embed.

End to end, as an investigator or a curator runs them, each a fresh ``probity`` process:

- **search**: ``probity search PROBE --case CASE-1 --json`` against a gallery of the 11 NASA
  portraits, one home per engine (the gallery created with
  ``PROBITY_ENGINE__DEFAULT_MODEL``), for the NASA probes: andrew_morgan_2,
  multi_morgan_hague (two faces), alexander_gerst_2_profile and the three no-face photos;
  ``--rounds`` rounds, engines interleaved, median kept.
- **enrol**: ``probity enrol --manifest`` of every single-person portrait (tests/data and
  ../shared/faces) ``--enrol-repeat`` times under different subjects, per engine, against the
  face_recognition-style loop of ``bench/enrol_throughput.py`` on the same photos (HOG
  upsample 1 → 5 points → ResNet, nothing stored, models loaded in the timing).
- **startup**: ``probity --help`` (Python, Probity's imports, no models), the floor under
  every CLI figure.

Usage::

    .venv/bin/python bench/engine_speed.py [--repeat 3] [--rounds 3] [--enrol-repeat 2]

Results: ``bench/results/engine_speed.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from enrol_throughput import baseline, photos  # noqa: E402

from probity.config import EngineSettings, LimitSettings  # noqa: E402
from probity.engine.align import align as dlib_align  # noqa: E402
from probity.engine.detect import detect as dlib_detect  # noqa: E402
from probity.engine.dlib_engine import DlibEngine  # noqa: E402
from probity.engine.embed import embed as dlib_embed  # noqa: E402
from probity.engine.images import read_image_file  # noqa: E402
from probity.engine.onnx_engine import OnnxEngine  # noqa: E402
from probity.engine.registry import build_engine_set  # noqa: E402
from probity.engine.types import DecodedImage  # noqa: E402

DATA = REPO / "tests" / "data"
FACES = REPO.parent / "shared" / "faces"
PROBES = (
    "andrew_morgan_2.jpg",
    "multi_morgan_hague.jpg",
    "alexander_gerst_2_profile.jpg",
    "noface_coffee.png",
    "noface_rocket.jpg",
    "noface_cat_chelsea.png",
)
GALLERY = {
    "andrew_morgan_1.jpg": "MORGAN",
    "nick_hague_1.jpg": "HAGUE",
    "alexander_gerst_1.jpg": "GERST",
    "eileen_collins_2.png": "COLLINS",
    "barack_obama_1.jpg": "OBAMA",
    "joe_biden_1.jpg": "BIDEN",
    "christina_koch_1.jpg": "KOCH",
    "jessica_meir_1.jpg": "MEIR",
    "scott_kelly_1.jpg": "KELLY",
    "peggy_whitson_1.jpg": "WHITSON",
    "anne_mcclain_1.jpg": "MCCLAIN",
}
ENGINES = {"sface": "sface-int8", "dlib": "dlib-resnet-v1"}
PROBITY = [sys.executable, "-m", "probity.interfaces.cli.main"]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def load(path: Path) -> DecodedImage:
    limits = LimitSettings()
    return read_image_file(
        path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels
    )


def stages_sface(engine: OnnxEngine, image: DecodedImage) -> dict[str, float]:
    detect_s, detections = timed(lambda: engine.detect(image))
    align_s = embed_s = 0.0
    for d in detections:
        took, chip = timed(lambda d=d: engine.recogniser.align(image.pixels, d.landmarks))
        align_s += took
        embed_s += timed(lambda chip=chip: engine.recogniser.embed([chip]))[0]
    analyse_s, faces = timed(lambda: engine.analyse(image))
    return {
        "detect": detect_s,
        "align": align_s,
        "embed": embed_s,
        "analyse": analyse_s,
        "faces": len(faces),
    }


def stages_dlib(engine: DlibEngine, image: DecodedImage) -> dict[str, float]:
    s = engine.settings
    detect_s, detections = timed(
        lambda: dlib_detect(
            image,
            engine.models,
            mode=s.detector,
            hog_upsample=s.hog_upsample,
            detect_max_side=s.detect_max_side,
            cnn_max_side=s.cnn_max_side,
        )
    )
    align_s = embed_s = 0.0
    for d in detections:
        took, face = timed(lambda d=d: dlib_align(image, d, engine.models))
        align_s += took
        embed_s += timed(lambda face=face: dlib_embed([face], engine.models))[0]
    analyse_s, faces = timed(lambda: engine.analyse(image))
    return {
        "detect": detect_s,
        "align": align_s,
        "embed": embed_s,
        "analyse": analyse_s,
        "faces": len(faces),
    }


def stage_run(paths: list[Path], repeat: int) -> dict[str, Any]:
    engines = build_engine_set(EngineSettings())
    sface = engines.resolve(ENGINES["sface"])
    dlib = engines.resolve(ENGINES["dlib"])
    assert isinstance(sface, OnnxEngine) and isinstance(dlib, DlibEngine)
    load_s = {"sface": timed(sface.warm_up)[0], "dlib": timed(dlib.warm_up)[0]}
    rows: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for _ in range(repeat):
        for path in paths:
            decode_s, image = timed(lambda path=path: load(path))
            for name in ("sface", "dlib"):
                got = stages_sface(sface, image) if name == "sface" else stages_dlib(dlib, image)
                got["decode"] = decode_s
                for stage, value in got.items():
                    rows[path.name][name][stage].append(value)
    table = {}
    for photo, per_engine in rows.items():
        table[photo] = {
            name: {
                stage: (ms(statistics.median(v)) if stage != "faces" else int(v[0]))
                for stage, v in values.items()
            }
            for name, values in per_engine.items()
        }
        for values in table[photo].values():
            values["other"] = round(
                values["analyse"] - values["detect"] - values["align"] - values["embed"], 1
            )
    return {"model_load_s": {k: round(v, 2) for k, v in load_s.items()}, "photos": table}


def profile_analyse(paths: list[Path]) -> str:
    """Where the SFace engine's analyse spends its time (cProfile, cumulative, top 15)."""
    engine = build_engine_set(EngineSettings()).default
    engine.warm_up()
    images = [load(p) for p in paths]
    profiler = cProfile.Profile()
    profiler.enable()
    for image in images * 2:
        engine.analyse(image)
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(15)
    return buffer.getvalue()


def cli(args: list[str], home: Path | None, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*PROBITY, *args, *(["--home", str(home)] if home is not None else [])],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"probity {' '.join(args)} failed: {done.stderr}")
    return took, done.stdout


def write_manifest(path: Path, rows: list[tuple[Path, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "subject",
                "source",
                "lawful_basis",
                "collected_at",
                "jurisdiction",
                "collected_by",
            ]
        )
        for photo, subject in rows:
            writer.writerow(
                [
                    str(photo),
                    subject,
                    f"bench/{photo.name}",
                    "public_task",
                    (date.today() - timedelta(days=60)).isoformat(),
                    "US",
                    "bench",
                ]
            )


def make_home(
    root: Path, engine: str, manifest_rows: list[tuple[Path, str]]
) -> tuple[Path, float, dict[str, Any]]:
    home = root / engine / "home"
    env = {"PROBITY_ENGINE__DEFAULT_MODEL": ENGINES[engine]}
    cli(["init"], home, env)
    cli(
        ["gallery", "create", "crew", "--policy", "benchmark", "--retention-days", "3650"],
        home,
        env,
    )
    manifest = root / engine / "manifest.csv"
    write_manifest(manifest, manifest_rows)
    took, out = cli(["enrol", "crew", "--manifest", str(manifest), "--json"], home, env)
    cli(
        [
            "case",
            "open",
            "CASE-1",
            "--offence",
            "kidnapping",
            "--justification",
            "probe photos from the scene of the benchmark",
            "--authorisation",
            "AUTH-1",
        ],
        home,
        env,
    )
    return home, took, json.loads(out)


def end_to_end(rounds: int, enrol_repeat: int) -> dict[str, Any]:
    single = photos([DATA, FACES])
    bulk = [(p, f"S{r}-{i}") for r in range(enrol_repeat) for i, p in enumerate(single)]
    gallery = [(FACES / name, subject) for name, subject in GALLERY.items()]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        startup = [cli(["--help"], None)[0] for _ in range(3)]
        result["startup_s"] = round(statistics.median(startup), 2)
        homes = {}
        enrol: dict[str, Any] = {}
        for engine in ENGINES:
            home, _, _ = make_home(root / "search", engine, gallery)
            homes[engine] = home
            _, took, summary = make_home(root / "bulk", engine, bulk)
            enrol[engine] = {
                "photos": len(bulk),
                "seconds": round(took, 2),
                "photos_per_s": round(len(bulk) / took, 2),
                "enrolled": summary["enrolled"],
                "refused": summary["refused"],
            }
        base_total, base_load, base_faces = baseline([p for p, _ in bulk])
        enrol["face_recognition_loop"] = {
            "photos": len(bulk),
            "seconds": round(base_total, 2),
            "model_load_s": round(base_load, 2),
            "photos_per_s": round(len(bulk) / base_total, 2),
            "faces": base_faces,
        }
        for engine in ENGINES:
            enrol[engine]["vs_face_recognition_loop"] = round(
                enrol[engine]["photos_per_s"] / enrol["face_recognition_loop"]["photos_per_s"], 2
            )
        result["enrol"] = enrol
        times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        tops: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for _ in range(rounds):
            for probe in PROBES:
                for engine, home in homes.items():
                    took, out = cli(
                        ["search", str(FACES / probe), "--case", "CASE-1", "--json"], home
                    )
                    times[probe][engine].append(took)
                    faces = json.loads(out)["faces"]
                    tops[probe][engine] = [
                        (f["candidates"][0]["subject"] if f["candidates"] else "-") for f in faces
                    ]
        search = {}
        for probe in PROBES:
            row = {e: round(statistics.median(times[probe][e]), 2) for e in ENGINES}
            row["dlib_over_sface"] = round(row["dlib"] / row["sface"], 2)
            row["rank1"] = dict(tops[probe])
            search[probe] = row
        total = {e: round(sum(search[p][e] for p in PROBES), 2) for e in ENGINES}
        search["all probes"] = {
            **total,
            "dlib_over_sface": round(total["dlib"] / total["sface"], 2),
        }
        result["search_s"] = search
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--enrol-repeat", type=int, default=2)
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument(
        "--end-to-end-only", action="store_true", help="keep the stages of the last results file"
    )
    args = parser.parse_args()
    if not FACES.is_dir():
        raise SystemExit(f"{FACES} not present: the NASA photos are read from there")
    load_before = os.getloadavg()
    stage_photos = [FACES / p for p in PROBES] + [DATA / "obama.jpg", FACES / "andrew_morgan_1.jpg"]
    out = REPO / "bench" / "results" / "engine_speed.json"
    if args.end_to_end_only:
        result: dict[str, Any] = json.loads(out.read_text())
        result["end_to_end_load_average_before"] = [round(v, 2) for v in load_before]
    else:
        result = {
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in load_before],
            "onnx_threads": EngineSettings().onnx_threads,
            "stages_ms": stage_run(stage_photos, args.repeat),
        }
        result["analyse_profile"] = profile_analyse(stage_photos[:3]).splitlines()[:40]
    out.parent.mkdir(exist_ok=True)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    out.write_text(json.dumps(result, indent=2) + "\n")  # the stages, should the rest fail
    if not args.no_end_to_end:
        result["end_to_end"] = end_to_end(args.rounds, args.enrol_repeat)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)


def print_tables(result: dict[str, Any]) -> None:
    print(
        f"cpu {result['cpu_count']}, load {result['load_average_before']} -> "
        f"{result['load_average_after']}; model load s {result['stages_ms']['model_load_s']}"
    )
    print("\n| photo | engine | faces | decode | detect | align | embed | analyse | other |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for photo, per in result["stages_ms"]["photos"].items():
        for engine, v in per.items():
            print(
                f"| {photo} | {engine} | {v['faces']} | {v['decode']} | {v['detect']} | "
                f"{v['align']} | {v['embed']} | {v['analyse']} | {v['other']} |"
            )
    e2e = result.get("end_to_end")
    if not e2e:
        return
    print(f"\nstartup (probity --help): {e2e['startup_s']} s")
    print("\n| probe | sface s | dlib s | dlib / sface | rank 1 (sface / dlib) |")
    print("|---|---:|---:|---:|---|")
    for probe, row in e2e["search_s"].items():
        ranks = row.get("rank1", {})
        print(
            f"| {probe} | {row['sface']} | {row['dlib']} | {row['dlib_over_sface']}× | "
            f"{ranks.get('sface', '')} / {ranks.get('dlib', '')} |"
        )
    print("\n| enrolment | photos | seconds | photos/s | vs loop |")
    print("|---|---:|---:|---:|---:|")
    for name, row in e2e["enrol"].items():
        print(
            f"| {name} | {row['photos']} | {row['seconds']} | {row['photos_per_s']} | "
            f"{row.get('vs_face_recognition_loop', 1.0)} |"
        )


if __name__ == "__main__":
    main()
