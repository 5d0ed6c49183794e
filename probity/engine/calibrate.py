"""Print the quality of every face in some photo folders, to set or check a QualityFloor.

    python -m probity.engine.calibrate tests/data ../shared/faces [--mode cnn] [--timing]

One row per detected face: every :class:`Quality` field, the landmark drift and geometry that
make up ``landmark_consistency``, and the reasons the default floor (or ``--floor k=v ...``)
gives. The table in engine/quality.py's docstring was made with this.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from probity.config import EngineSettings, LimitSettings
from probity.domain.faces import DetectorMode, QualityFloor
from probity.engine.align import align
from probity.engine.detect import detect
from probity.engine.embed import embed
from probity.engine.images import read_image_file
from probity.engine.models import DlibModels
from probity.engine.quality import assess_quality, landmark_geometry, quality_reasons

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--mode", type=DetectorMode, default=None)
    parser.add_argument("--timing", action="store_true", help="print time per stage")
    parser.add_argument("--floor", nargs="*", default=[], help="QualityFloor fields, k=v")
    args = parser.parse_args(argv)

    settings = EngineSettings()
    limits = LimitSettings()
    floor = QualityFloor.from_dict({k: float(v) for k, v in (a.split("=") for a in args.floor)})
    models = DlibModels()
    models.load_all()
    timings: dict[str, list[float]] = defaultdict(list)

    print(
        "| photo | # | box (l,t,w,h) | det | conf | eye px | width px | sharp | yaw "
        "| drift | geom | consist | default floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            image = read_image_file(
                path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels
            )
            started = time.perf_counter()
            detections = detect(
                image,
                models,
                mode=args.mode or settings.detector,
                hog_upsample=settings.hog_upsample,
                detect_max_side=settings.detect_max_side,
                cnn_max_side=settings.cnn_max_side,
            )
            kinds = "+".join(sorted({d.detector.value for d in detections})) or "none"
            timings[f"detect ({kinds}, {image.width}x{image.height})"].append(
                time.perf_counter() - started
            )
            if not detections:
                print(f"| {path.name} | – | no face | | | | | | | | | | |")
            for index, detection in enumerate(detections):
                started = time.perf_counter()
                face = align(image, detection, models)
                timings["align (landmarks + chip + drift) per face"].append(
                    time.perf_counter() - started
                )
                started = time.perf_counter()
                embed([face], models)
                timings["embed per face (batch of 1)"].append(time.perf_counter() - started)
                quality = assess_quality(face)
                points = np.asarray(face.landmarks, dtype=np.float64)
                geometry = landmark_geometry(points, box_width=detection.box.width)
                reasons = "; ".join(quality_reasons(quality, floor)) or "passes"
                box = ",".join(str(v) for v in detection.box.as_list())
                q = quality
                print(
                    f"| {path.name} | {index} | {box} | {q.detector.value} "
                    f"| {q.detector_confidence:.2f} | {q.inter_eye_px:.1f} "
                    f"| {q.face_width_px:.0f} | {q.sharpness:.0f} | {q.yaw_ratio:+.3f} "
                    f"| {face.landmark_drift:.2f} | {geometry:.2f} "
                    f"| {q.landmark_consistency:.2f} | {reasons} |"
                )
    if args.timing:
        print()
        for stage, values in sorted(timings.items()):
            print(
                f"{stage}: n={len(values)} mean {np.mean(values) * 1000:.0f} ms "
                f"max {np.max(values) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
