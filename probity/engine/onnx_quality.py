"""Quality of a face found by YuNet and aligned for an ONNX recogniser.

The same :class:`~probity.domain.faces.Quality` fields as the dlib path, read from YuNet's
five points (eye centres, nose tip, mouth corners), so the gallery floors and their reasons
read the same whichever engine found the face:

- ``inter_eye_px``: distance between YuNet's two eye points, full-resolution pixels.
- ``sharpness``: variance of the Laplacian of the grey aligned chip (112 × 112 for SFace).
- ``yaw_ratio``: the nose tip's offset from the eye midpoint along the eye axis, in inter-eye
  distances (IED); YuNet's nose tip follows the head, so unlike dlib's 5 points this reads
  profiles: frontal portraits 0.00–0.10, the Gerst profile −0.42.
- ``detector_confidence``: YuNet's score (0..1).
- ``landmark_consistency``: how well the five points are arranged like a face (the worst of
  :data:`GEOMETRY_BANDS`, 0..1). YuNet regresses its points from the whole face, so there is no
  box to perturb as on the dlib path (where the points are predicted from the box); geometry is
  the check that stays.

Measured with ``python -m probity.engine.calibrate --model sface-int8 tests/data ../shared/faces``
(see that module for the table): every real face scores 0.90–0.96 and geometry 1.00; the two
false YuNet boxes on joe_biden_1.jpg (folds of the flag behind him) score 0.69 and 0.63, which
the floor of 0.80 refuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import DetectorKind, Quality
from probity.engine.quality import sharpness

GEOMETRY_BANDS: dict[str, tuple[float, float, float]] = {
    # measure: (low, high, tolerance) in IED units; 1.0 inside [low, high], falling linearly
    # to 0 at low - tolerance and high + tolerance. Real faces measured are in brackets.
    "nose_below_eyes": (0.15, 1.0, 0.25),
    "mouth_below_eyes": (0.55, 1.6, 0.3),
    "mouth_below_nose": (0.1, 1.0, 0.15),
    "mouth_width": (0.4, 1.2, 0.25),
    "ied_per_box_width": (0.2, 0.7, 0.15),
}


def _frame(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Points in the face frame (origin between the eyes, x along the eyes, y down) in IED
    units, and the IED in pixels."""
    left, right = points[0], points[1]
    axis = right - left
    inter_eye = max(float(np.linalg.norm(axis)), 1e-6)
    x = axis / inter_eye
    y = np.array([-x[1], x[0]])
    origin = (left + right) / 2
    local = (points - origin) @ np.stack([x, y], axis=1) / inter_eye
    return local, origin, inter_eye


def yaw_ratio5(points: NDArray[np.float64]) -> float:
    """Signed nose-tip offset along the eye axis in IED (positive: nose to the image's right)."""
    local, _, _ = _frame(points)
    return float(local[2, 0])


def geometry5(points: NDArray[np.float64], *, box_width: float) -> float:
    """0..1: how face-like the five points are (the worst band of :data:`GEOMETRY_BANDS`)."""
    local, _, inter_eye = _frame(points)
    mouth_y = float((local[3, 1] + local[4, 1]) / 2)
    measures = {
        "nose_below_eyes": float(local[2, 1]),
        "mouth_below_eyes": mouth_y,
        "mouth_below_nose": mouth_y - float(local[2, 1]),
        "mouth_width": float(np.linalg.norm(local[4] - local[3])),
        "ied_per_box_width": inter_eye / max(box_width, 1.0),
    }
    return min(_band(value, *GEOMETRY_BANDS[name]) for name, value in measures.items())


def _band(value: float, low: float, high: float, tolerance: float) -> float:
    if low <= value <= high:
        return 1.0
    gap = low - value if value < low else value - high
    return max(0.0, 1.0 - gap / tolerance)


def assess_quality5(
    *,
    landmarks: Sequence[tuple[float, float]],
    box_width: float,
    score: float,
    chip: NDArray[np.uint8],
    detector: DetectorKind = DetectorKind.YUNET,
) -> Quality:
    """The quality of one face from its five points, box width, detector score and chip."""
    points = np.asarray(landmarks, dtype=np.float64)
    return Quality(
        inter_eye_px=float(np.linalg.norm(points[1] - points[0])),
        face_width_px=float(box_width),
        sharpness=sharpness(chip),
        yaw_ratio=yaw_ratio5(points),
        detector=detector,
        detector_confidence=float(score),
        landmark_consistency=geometry5(points, box_width=box_width),
    )
