"""Stage 1: find face boxes, in full-resolution pixel coordinates.

Two dlib detectors, chosen by :class:`DetectorMode` (times measured on this 2-core machine with
the ``dlib-bin`` wheel):

- **HOG** (frontal HOG features + linear SVM): 0.08 s for a 512 × 512 photo, 0.2–0.6 s for
  0.6–2 megapixel photos, with upsample 1. Frontal and near-frontal faces only; its score is
  the SVM margin (0 is dlib's threshold; the real faces we measured score 0.7–2.9). Its window
  is 80 px, so with ``hog_upsample`` = 1 it finds faces from about 35–40 px wide.
- **CNN** (MMOD): finds profiles and hard faces, but costs 7–9 s for a 1000 × 1000 photo
  (1.7 s for 512 × 512). It runs without upsampling, so it finds faces from about 65–80 px
  wide in the image it sees (measured: obama.jpg shrunk to a 50 px face is missed, 65 px
  found). Upsampling would halve that at 4× the time; lowering ``cnn_max_side`` trades the
  other way (time grows with the square of the side).
- **AUTO**: HOG, then the CNN only when HOG finds nothing, so the CNN's cost is paid for
  profiles and empty photos only.

Each detector works on a copy downscaled (anti-aliased) to at most ``detect_max_side`` (HOG) or
``cnn_max_side`` (CNN) pixels on the longest side, and boxes are mapped back to full
resolution, where alignment runs. The trade-off: with the defaults, HOG misses faces narrower
than about 2.5 % of the photo's longest side, the CNN faces narrower than about 7 %.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from probity.domain.faces import DetectorKind, DetectorMode, FaceBox
from probity.engine.models import DlibModels
from probity.engine.types import DecodedImage, Detection

HOG_THRESHOLD = 0.0
"""dlib's default SVM threshold: lower boxes are not returned. Weak ones are kept out by the
quality floor instead, which can say why."""

CNN_UPSAMPLE = 0
"""No upsampling for the CNN: each doubling costs 4× the time (a 1000 px photo would take
about 30 s instead of 8); ``cnn_max_side`` is the knob for small faces."""


def detect(
    image: DecodedImage,
    models: DlibModels,
    *,
    mode: DetectorMode = DetectorMode.AUTO,
    hog_upsample: int = 1,
    detect_max_side: int = 1600,
    cnn_max_side: int = 1000,
    hog_pixel_budget: int | None = None,
) -> list[Detection]:
    """Every face box in ``image``, sorted left to right (empty when there is none).

    ``hog_upsample`` is how many times HOG doubles the (downscaled) image: 0 finds faces from
    about 80 px, 1 from 40 px at 4× the cost. ``hog_pixel_budget``, when given, replaces it:
    HOG sees the image scaled up by at most 2× (faces from 40 px) and to at most that many
    pixels, so small photos are searched as finely as with upsampling while large ones cost
    less (see ``detect_hog_budget``).
    ``detect_max_side`` and ``cnn_max_side`` are the longest sides, in pixels, the HOG and CNN
    detectors see.
    """
    if mode is DetectorMode.CNN:
        found = detect_cnn(image, models, max_side=cnn_max_side)
    elif hog_pixel_budget is not None:
        found = detect_hog_budget(image, models, pixel_budget=hog_pixel_budget)
        if mode is DetectorMode.AUTO and not found:
            found = detect_cnn(image, models, max_side=cnn_max_side)
    else:
        found = detect_hog(image, models, upsample=hog_upsample, max_side=detect_max_side)
        if mode is DetectorMode.AUTO and not found:
            found = detect_cnn(image, models, max_side=cnn_max_side)
    return sorted(found, key=lambda d: (d.box.left, d.box.top))


def detect_hog(
    image: DecodedImage, models: DlibModels, *, upsample: int, max_side: int
) -> list[Detection]:
    """HOG detections; ``confidence`` is the SVM margin (≥ 0 by dlib's threshold)."""
    pixels, scale = downscale(image.pixels, max_side)
    return [
        Detection(box=scale_box(box, 1 / scale), confidence=score, detector=DetectorKind.HOG)
        for box, score in models.run_hog(pixels, upsample=upsample, threshold=HOG_THRESHOLD)
    ]


HOG_WINDOW_PX = 80
"""The width of dlib's HOG detection window: without upsampling it finds faces from about
this size; at scale ``f`` it finds faces from ``80 / f`` px."""


def detect_hog_budget(
    image: DecodedImage, models: DlibModels, *, pixel_budget: int
) -> list[Detection]:
    """HOG on a copy scaled by ``min(2, sqrt(pixel_budget / pixels))``.

    HOG's time is proportional to the pixels it scans. A 512 × 512 photo is scanned at 2×
    like ``upsample=1`` (faces from 40 px); a 1132 × 770 portrait with a 1.5 Mpx budget at
    1.31× (faces from 61 px) for 43 % of upsampling's cost; the smallest face found grows
    with the photo, which suits portraits and gallery images, not crowd photos.
    """
    height, width = image.pixels.shape[:2]
    scale = min(2.0, (pixel_budget / max(1, height * width)) ** 0.5)
    if abs(scale - 1.0) < 0.02:
        pixels, scale = image.pixels, 1.0
    else:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = Image.fromarray(image.pixels).resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.uint8)
    return [
        Detection(box=scale_box(box, 1 / scale), confidence=score, detector=DetectorKind.HOG)
        for box, score in models.run_hog(pixels, upsample=0, threshold=HOG_THRESHOLD)
    ]


def detect_cnn(image: DecodedImage, models: DlibModels, *, max_side: int) -> list[Detection]:
    """MMOD CNN detections; ``confidence`` is the MMOD score (real faces we measured:
    1.05–1.10, half a face 0.55)."""
    pixels, scale = downscale(image.pixels, max_side)
    return [
        Detection(box=scale_box(box, 1 / scale), confidence=score, detector=DetectorKind.CNN)
        for box, score in models.run_cnn(pixels, upsample=CNN_UPSAMPLE)
    ]


def downscale(pixels: NDArray[np.uint8], max_side: int) -> tuple[NDArray[np.uint8], float]:
    """``pixels`` shrunk so the longest side is at most ``max_side``, and the factor used
    (≤ 1; 1 means unchanged and not copied). Pillow's bilinear resize filters over the whole
    footprint when shrinking, so small faces do not alias away."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return pixels, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8), scale


def scale_box(box: FaceBox, factor: float) -> FaceBox:
    """``box`` with every coordinate multiplied by ``factor`` (rounded to whole pixels)."""
    if factor == 1.0:
        return box
    left, top = round(box.left * factor), round(box.top * factor)
    right = round((box.left + box.width) * factor)
    bottom = round((box.top + box.height) * factor)
    return FaceBox(left=left, top=top, width=right - left, height=bottom - top)
