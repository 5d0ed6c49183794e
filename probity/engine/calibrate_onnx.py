"""The calibration tables for ONNX engines (``python -m probity.engine.calibrate --model``).

Kept apart from :mod:`probity.engine.calibrate` (the dlib table) so each stays short; see that
module's docstring for the columns and the commands.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from probity.config import EngineSettings, LimitSettings
from probity.domain.faces import DetectorMode, QualityFloor
from probity.engine.images import read_image_file
from probity.engine.onnx_engine import OnnxEngine
from probity.engine.onnx_quality import assess_quality5
from probity.engine.quality import quality_reasons
from probity.engine.registry import build_engine_set
from probity.engine.types import AnalysedFace, DecodedImage

HEADER5 = "photo                         det   conf eye px width sharp   yaw geom gal prb"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"}


def _engine(key: str) -> OnnxEngine:
    engine = build_engine_set(EngineSettings()).resolve(key)
    if not isinstance(engine, OnnxEngine):
        raise SystemExit(f"{key} is not an ONNX model; run without --model for the dlib table")
    engine.warm_up()
    return engine


def _photos(folders: Sequence[Path]) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in PHOTO_SUFFIXES
    ]


def _load(path: Path) -> DecodedImage:
    limits = LimitSettings()
    return read_image_file(
        path, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels
    )


def onnx_table(
    key: str,
    folders: Sequence[Path],
    mode: DetectorMode | None,
    timing: bool,
    gallery_floor: QualityFloor,
    probe_floor: QualityFloor,
) -> None:
    """One row per face the engine finds in ``folders``, with the reasons of any refusal."""
    engine = _engine(key)
    timings: dict[str, list[float]] = defaultdict(list)
    print(HEADER5)
    for path in _photos(folders):
        image = _load(path)
        started = time.perf_counter()
        detections = engine.detect(image, mode)
        kinds = "+".join(sorted({d.detector.value for d in detections})) or "none"
        timings[f"detect ({kinds})"].append(time.perf_counter() - started)
        if not detections:
            print(f"{path.name[:29]:<29} no face")
        for detection in detections:
            points = detection.landmarks or engine._landmarks_in(image, detection.box)
            if points is None:
                print(f"{path.name[:29]:<29} {detection.detector.value:<5} no five points")
                continue
            started = time.perf_counter()
            chip = engine.recogniser.align(image.pixels, points)
            timings["align per face"].append(time.perf_counter() - started)
            started = time.perf_counter()
            engine.recogniser.embed([chip])
            timings["embed per face (batch of 1)"].append(time.perf_counter() - started)
            q = assess_quality5(
                landmarks=points,
                box_width=detection.box.width,
                score=detection.confidence,
                chip=chip,
                detector=detection.detector,
            )
            gallery = quality_reasons(q, gallery_floor)
            probe = quality_reasons(q, probe_floor)
            print(
                f"{path.name[:29]:<29} {q.detector.value:<5} {q.detector_confidence:4.2f} "
                f"{q.inter_eye_px:6.1f} {q.face_width_px:5.0f} {q.sharpness:5.0f} "
                f"{q.yaw_ratio:+5.2f} {q.landmark_consistency:4.2f} "
                f"{'no' if gallery else 'ok':>3} {'no' if probe else 'ok':>3}"
            )
            for reason in gallery:
                print(f"    - gallery: {reason}")
            for reason in probe:
                print(f"    - probe: {reason}")
    if timing:
        print()
        for stage, values in sorted(timings.items()):
            print(
                f"{stage}: n={len(values)} mean {np.mean(values) * 1000:.1f} ms "
                f"max {np.max(values) * 1000:.1f} ms"
            )


def _best(faces: Sequence[AnalysedFace]) -> AnalysedFace | None:
    return max(faces, key=lambda f: f.quality.detector_confidence) if faces else None


def degrade_table(
    key: str, photo: Path, gallery_floor: QualityFloor, probe_floor: QualityFloor
) -> None:
    """Blur ``photo`` and shrink it, and print each version's quality and descriptor movement
    (L2 distance from the original's descriptor, on the model's own scale)."""
    from PIL import Image, ImageFilter

    engine = build_engine_set(EngineSettings()).resolve(key)
    original = _load(photo)
    reference = _best(engine.analyse(original))
    if reference is None:
        raise SystemExit(f"no face in {photo}")
    source = Image.fromarray(original.pixels)
    eyes = reference.quality.inter_eye_px
    versions: list[tuple[str, DecodedImage]] = []
    for radius in (1, 2, 3, 4, 5):
        blurred = np.asarray(source.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)
        versions.append((f"blur radius {radius}", _decoded(blurred, original)))
    for target in (40, 30, 25, 20, 18, 15, 12, 10):
        scale = target / eyes
        size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
        small = np.asarray(source.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
        versions.append((f"eyes ~{target} px", _decoded(small, original)))
    print(
        f"{photo.name}, model {engine.model.key}: original eyes {eyes:.1f} px, sharpness "
        f"{reference.quality.sharpness:.0f}"
    )
    print("version             conf eye px sharp  moved gal prb")
    for label, image in versions:
        face = _best(engine.analyse(image))
        if face is None:
            print(f"{label:<19} no face")
            continue
        q = face.quality
        moved = float(np.linalg.norm(face.descriptor - reference.descriptor))
        gallery = quality_reasons(q, gallery_floor)
        probe = quality_reasons(q, probe_floor)
        print(
            f"{label:<19} {q.detector_confidence:4.2f} {q.inter_eye_px:6.1f} {q.sharpness:5.1f} "
            f"{moved:6.3f} {'no' if gallery else 'ok':>3} {'no' if probe else 'ok':>3}"
        )


def _decoded(pixels: NDArray[np.uint8], like: DecodedImage) -> DecodedImage:
    return DecodedImage(pixels=np.ascontiguousarray(pixels), sha256="", format=like.format)
