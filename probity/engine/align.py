"""Stage 2: 5-point landmarks and the 150 × 150 aligned chip the embedder needs.

The shape predictor runs on the **full-resolution** image with the full-resolution box. We
measured the alternative (predict on a 2–4× downscaled copy, map the points back): the points
move by about 1 px (0.3–1 % of the inter-eye distance), descriptors move by about 0.05, and
same-person distances got neither better nor worse (Obama/Obama3 0.33 vs 0.31–0.34). Full
resolution is what dlib's own ``compute_face_descriptor(img, shape)`` assumes, and the
predictor costs about 1–2 ms whatever the image size, so there is nothing to gain.

The chip is ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` on the full image: the
exact crop ``compute_face_descriptor(img, shape)`` makes internally (verified: identical
descriptors), rotated so the eyes are level and low-pass filtered when shrunk.

Alignment also measures **landmark drift** for the quality stage: the predictor is run again
from six perturbed boxes (shifted by 10 % of the box left, right, up and down; 10 % larger and
smaller). On a face the points are held by the eyes and nose and barely move (frontal faces we
measured: 0.01–0.26; the Gerst profile 0.57); on a texture or a badge they have nothing to hold
on to and follow the box (the mission-patch false face: 0.91). Cost: six more predictor runs,
about 4–6 ms a face.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import FaceBox
from probity.engine.models import DlibModels, Point
from probity.engine.types import AlignedFace, DecodedImage, Detection

CHIP_SIZE = 150  # pixels; the ResNet's input size
CHIP_PADDING = 0.25  # dlib's default context around the landmarks; the ResNet was trained so

DRIFT_PERTURBATIONS: tuple[tuple[float, float, float], ...] = (
    (0.1, 0.0, 0.0),
    (-0.1, 0.0, 0.0),
    (0.0, 0.1, 0.0),
    (0.0, -0.1, 0.0),
    (0.0, 0.0, 0.1),
    (0.0, 0.0, -0.1),
)
"""(shift x, shift y, change of size), each as a fraction of the box's width/height."""


def align(image: DecodedImage, detection: Detection, models: DlibModels) -> AlignedFace:
    """Landmarks (full-resolution pixels), the aligned chip and the landmark drift of one face."""
    landmarks = models.landmarks(image.pixels, detection.box)
    chip = models.face_chip(
        image.pixels, detection.box, landmarks, size=CHIP_SIZE, padding=CHIP_PADDING
    )
    drift = landmark_drift(image, detection.box, landmarks, models)
    return AlignedFace(
        detection=detection, landmarks=tuple(landmarks), chip=chip, landmark_drift=drift
    )


def landmark_drift(
    image: DecodedImage, box: FaceBox, landmarks: Sequence[Point], models: DlibModels
) -> float:
    """How far the landmarks follow a perturbed box, 0..1 (0: anchored to the image, a face;
    1: they move with the box, no face structure holds them).

    For each perturbation: the mean distance the points moved, divided by the mean distance
    they would have moved had they been fixed to the box; clipped to 1; averaged.
    """
    base = np.asarray(landmarks, dtype=np.float64)
    ratios: list[float] = []
    for dx, dy, grow in DRIFT_PERTURBATIONS:
        moved_box = _perturb(box, dx, dy, grow)
        followed = _follow_box(base, box, moved_box)
        expected = float(np.linalg.norm(followed - base, axis=1).mean())
        if expected < 1.0:  # a box under ~10 px: a perturbation is below one pixel
            continue
        points = np.asarray(models.landmarks(image.pixels, moved_box), dtype=np.float64)
        moved = float(np.linalg.norm(points - base, axis=1).mean())
        ratios.append(min(moved / expected, 1.0))
    return float(np.mean(ratios)) if ratios else 1.0


def _perturb(box: FaceBox, dx: float, dy: float, grow: float) -> FaceBox:
    width = box.width * (1 + grow)
    height = box.height * (1 + grow)
    left = box.left + dx * box.width - (width - box.width) / 2
    top = box.top + dy * box.height - (height - box.height) / 2
    return FaceBox(left=round(left), top=round(top), width=round(width), height=round(height))


def _follow_box(points: NDArray[np.float64], old: FaceBox, new: FaceBox) -> NDArray[np.float64]:
    """Where ``points`` would be if they kept their relative position inside the box."""
    scale = np.array([new.width / old.width, new.height / old.height])
    origin = np.array([old.left, old.top], dtype=np.float64)
    moved: NDArray[np.float64] = np.array([new.left, new.top]) + (points - origin) * scale
    return moved
