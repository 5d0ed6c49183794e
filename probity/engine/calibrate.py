"""Print the quality of every face in some photo folders, to set or check the quality floors.

    python -m probity.engine.calibrate tests/data ../shared/faces [--mode cnn] [--timing]
        [--floor k=v ...] [--probe-floor k=v ...]
    python -m probity.engine.calibrate --model sface-int8 tests/data ../shared/faces
    python -m probity.engine.calibrate --model sface-int8 --degrade tests/data/obama.jpg

One row per detected face: every :class:`Quality` field (conf: detector confidence, eye px:
inter-eye distance, width: box width in px, sharp: sharpness, yaw: yaw ratio), the landmark
drift and geometry that make up ``landmark_consistency`` (consist), and whether the gallery
floor (``QualityFloor()`` with ``--floor`` overrides) and the probe floor
(``PROBE_QUALITY_FLOOR`` with ``--probe-floor`` overrides) accept it, followed by the reasons
of any refusal. The table in engine/quality.py's docstring was made with this.

``--model KEY`` (a model name or key: ``sface-int8``, an operator model) prints the same table
for an ONNX engine: YuNet's score, inter-eye px and box width from YuNet's five points,
sharpness on the model's aligned chip (112 × 112 for SFace), yaw from the five points, the
geometry of the five points (which is its landmark consistency; there is no drift column), and
the two verdicts. The table in engine/onnx_quality.py's docstring was made with this.

``--degrade PHOTO`` blurs the photo (Gaussian radius 1-5) and shrinks it (eyes 40 down to
10 px apart) and prints, for the face found, its quality and how far its descriptor moved from
the original photo's: what the sharpness and inter-eye floors are set from.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from probity.config import EngineSettings, LimitSettings
from probity.domain.faces import PROBE_QUALITY_FLOOR, DetectorMode, QualityFloor
from probity.engine.align import align
from probity.engine.detect import detect
from probity.engine.embed import embed
from probity.engine.images import read_image_file
from probity.engine.models import DlibModels
from probity.engine.quality import assess_quality, landmark_geometry, quality_reasons

HEADER = "photo                         det  conf eye px width sharp   yaw drift geom cons gal prb"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"}


def _overrides(pairs: list[str]) -> dict[str, float]:
    return {key: float(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--mode", type=DetectorMode, default=None)
    parser.add_argument("--timing", action="store_true", help="print the time of each stage")
    parser.add_argument("--floor", nargs="*", default=[], help="gallery floor overrides, k=v")
    parser.add_argument("--probe-floor", nargs="*", default=[], help="probe floor overrides")
    parser.add_argument("--model", default=None, help="an ONNX model name or key (sface-int8)")
    parser.add_argument("--degrade", type=Path, default=None, help="blur and shrink one photo")
    args = parser.parse_args(argv)

    settings = EngineSettings()
    limits = LimitSettings()
    gallery_floor = dataclasses.replace(QualityFloor(), **_overrides(args.floor))
    probe_floor = dataclasses.replace(PROBE_QUALITY_FLOOR, **_overrides(args.probe_floor))
    if args.model is not None or args.degrade is not None:
        from probity.engine.calibrate_onnx import degrade_table, onnx_table

        key = args.model or settings.default_model
        if args.degrade is not None:
            degrade_table(key, args.degrade, gallery_floor, probe_floor)
        else:
            onnx_table(key, args.folders, args.mode, args.timing, gallery_floor, probe_floor)
        return
    models = DlibModels()
    models.load_all()
    timings: dict[str, list[float]] = defaultdict(list)

    def timed(stage: str, started: float) -> None:
        timings[stage].append(time.perf_counter() - started)

    print(HEADER)
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
            timed(f"detect ({kinds}, {image.width}x{image.height})", started)
            if not detections:
                print(f"{path.name[:29]:<29} no face")
            for detection in detections:
                started = time.perf_counter()
                face = align(image, detection, models)
                timed("align (landmarks + chip + drift) per face", started)
                started = time.perf_counter()
                embed([face], models)
                timed("embed per face (batch of 1)", started)
                q = assess_quality(face)
                points = np.asarray(face.landmarks, dtype=np.float64)
                geometry = landmark_geometry(points, box_width=detection.box.width)
                gallery = quality_reasons(q, gallery_floor)
                probe = quality_reasons(q, probe_floor)
                print(
                    f"{path.name[:29]:<29} {q.detector.value:<3} {q.detector_confidence:5.2f} "
                    f"{q.inter_eye_px:6.1f} {q.face_width_px:5.0f} {q.sharpness:5.0f} "
                    f"{q.yaw_ratio:+5.2f} {face.landmark_drift:5.2f} {geometry:4.2f} "
                    f"{q.landmark_consistency:4.2f} {'no' if gallery else 'ok':>3} "
                    f"{'no' if probe else 'ok':>3}"
                )
                for reason in gallery:
                    print(f"    - gallery: {reason}")
                for reason in probe:
                    print(f"    - probe: {reason}")
    if args.timing:
        print()
        for stage, values in sorted(timings.items()):
            print(
                f"{stage}: n={len(values)} mean {np.mean(values) * 1000:.0f} ms "
                f"max {np.max(values) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
