"""Enrolment throughput: ``probity enrol --manifest`` against a plain face_recognition-style
loop of the same dlib calls, on the same photos.

The baseline is what ``face_recognition`` does for each photo, one at a time, with nothing
stored: load the file (Pillow → RGB array), HOG detection with one upsample
(``face_locations``), 5-point landmarks and the ResNet descriptor (``face_encodings``, no
jitter). Probity does that too and, on top: EXIF orientation, decode limits, quality
assessment (including the landmark-drift probe), the CNN detector where HOG finds nothing,
per-subject AES-GCM encryption of the image and template, SQLite rows, the audit chain and
the index save. Both are timed end to end including model loading; the steady-state per-photo
rate without model loading is reported too.

Usage::

    .venv/bin/python bench/enrol_throughput.py [--repeat 4] [--photos DIR ...]

Photos default to the portraits in tests/data and, where present, ../shared/faces (read in
place, never copied). Each photo is enrolled ``--repeat`` times under different subject
references so that the run is long enough to time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [REPO / "tests" / "data", REPO.parent / "shared" / "faces"]
SKIP = {
    "coffee.png",
    "rocket.jpg",
    "chelsea.png",
    "noface_coffee.png",
    "noface_rocket.jpg",
    "noface_cat_chelsea.png",
    "multi_morgan_hague.jpg",
    "alexander_gerst_2_profile.jpg",
}


def photos(dirs: list[Path]) -> list[Path]:
    found = []
    for d in dirs:
        if d.is_dir():
            found += sorted(
                p
                for p in d.iterdir()
                if p.suffix.lower() in {".jpg", ".jpeg", ".png"} and p.name not in SKIP
            )
    return found


def baseline(paths: list[Path]) -> tuple[float, float, int]:
    """face_recognition's calls, inlined: returns (total s, model-load s, faces embedded)."""
    t0 = time.perf_counter()
    import dlib
    from PIL import Image

    from probity.engine.models import find_models_dir

    models = find_models_dir()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    encoder = dlib.face_recognition_model_v1(
        str(models / "dlib_face_recognition_resnet_model_v1.dat")
    )
    loaded = time.perf_counter()
    faces = 0
    for path in paths:
        image = np.array(Image.open(path).convert("RGB"))  # face_recognition.load_image_file
        for rect in detector(image, 1):  # face_locations(model="hog", upsample 1)
            shape = predictor(image, rect)  # _raw_face_landmarks(model="small")
            np.array(encoder.compute_face_descriptor(image, shape, 1))  # face_encodings
            faces += 1
    return time.perf_counter() - t0, loaded - t0, faces


def probity_run(
    paths: list[Path], repeat: int, workdir: Path, workers: int | None = None
) -> tuple[float, dict]:
    home = workdir / "home"
    probity = [sys.executable, "-m", "probity.interfaces.cli.main"]
    env = {**os.environ, "PROBITY_HOME": str(home)}
    if workers is not None:
        env["PROBITY_ENGINE__WORKERS"] = str(workers)
    subprocess.run([*probity, "init"], check=True, env=env, capture_output=True)
    subprocess.run(
        [
            *probity,
            "gallery",
            "create",
            "bench",
            "--policy",
            "benchmark",
            "--retention-days",
            "3650",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    manifest = workdir / "manifest.csv"
    with manifest.open("w", newline="") as handle:
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
        for r in range(repeat):
            for i, p in enumerate(paths):
                writer.writerow(
                    [
                        str(p),
                        f"S{r}-{i}",
                        f"bench/{p.name}",
                        "public_task",
                        (date.today() - timedelta(days=60)).isoformat(),
                        "US",
                        "bench",
                    ]
                )
    t0 = time.perf_counter()
    done = subprocess.run(
        [*probity, "enrol", "bench", "--manifest", str(manifest), "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    summary = json.loads(done.stdout)
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--photos", type=Path, nargs="*", default=DEFAULT_DIRS)
    args = parser.parse_args()
    paths = photos(args.photos)
    runs = paths * args.repeat
    base_total, base_load, base_faces = baseline(runs)
    with tempfile.TemporaryDirectory() as tmp:
        prob_total, summary = probity_run(paths, args.repeat, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        single_total, _ = probity_run(paths, args.repeat, Path(tmp), workers=1)
    n = len(runs)
    result = {
        "photos": n,
        "distinct_photos": len(paths),
        "baseline_seconds": round(base_total, 2),
        "baseline_model_load_seconds": round(base_load, 2),
        "baseline_photos_per_s": round(n / base_total, 2),
        "baseline_steady_photos_per_s": round(n / (base_total - base_load), 2),
        "baseline_faces": base_faces,
        "probity_seconds": round(prob_total, 2),
        "probity_photos_per_s": round(n / prob_total, 2),
        "probity_enrolled": summary["enrolled"],
        "probity_refused": summary["refused"],
        "ratio_probity_over_baseline": round((n / prob_total) / (n / base_total), 3),
        "probity_one_worker_seconds": round(single_total, 2),
        "probity_one_worker_photos_per_s": round(n / single_total, 2),
        "ratio_one_worker_over_baseline": round(base_total / single_total, 3),
        "cpu_count": os.cpu_count(),
    }
    out = REPO / "bench" / "results" / "enrol_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
