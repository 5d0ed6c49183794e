"""Quality of a face found by YuNet and aligned for an ONNX recogniser.

The same :class:`~probity.domain.faces.Quality` fields as the dlib path, read from YuNet's
five points (eye centres, nose tip, mouth corners), so the gallery floors and their reasons
read the same whichever engine found the face:

- ``inter_eye_px``: distance between YuNet's two eye points, full-resolution pixels.
- ``sharpness``: variance of the Laplacian of the grey aligned chip (112 × 112 for SFace).
- ``yaw_ratio``: the nose tip's offset from the eye midpoint along the eye axis, in inter-eye
  distances (IED); YuNet's nose tip follows the head, so unlike dlib's 5 points this reads
  profiles: frontal portraits −0.20…+0.11, the Gerst profile −0.54.
- ``detector_confidence``: YuNet's score (0..1).
- ``landmark_consistency``: how well the five points are arranged like a face (the worst of
  :data:`GEOMETRY_BANDS`, 0..1). YuNet regresses its points from the whole face, so there is no
  box to perturb as on the dlib path (where the points are predicted from the box); geometry is
  the check that stays.

Calibration (YuNet 2023mar int8bq at ``yunet_max_side`` 640, SFace 2021dec int8bq, default
settings) on every photo in tests/data and ../shared/faces (astronaut.png is
eileen_collins_2.png, obama.jpg is barack_obama_1.jpg); "gal" is the gallery floor
``QualityFloor()``, "prb" the probe floor ``PROBE_QUALITY_FLOOR``; "geom" is
``landmark_consistency``. Made with
``python -m probity.engine.calibrate --model sface-int8 tests/data ../shared/faces``::

    photo                         det   conf eye px width sharp   yaw geom gal prb
    32bit.png                     yunet 0.95  123.7   276  1488 -0.20 1.00  ok  ok
    astronaut.png                 yunet 0.93   47.1    90   649 -0.06 1.00  ok  ok
    biden.jpg                     yunet 0.93  148.2   288  1003 +0.08 1.00  ok  ok
    chelsea.png                   no face
    coffee.png                    no face
    obama.jpg                     yunet 0.95  115.0   240  1930 -0.02 1.00  ok  ok
    obama2.jpg                    yunet 0.95  123.8   276  1534 -0.20 1.00  ok  ok
    obama3.jpg                    yunet 0.94  130.9   266   775 +0.10 1.00  ok  ok
    obama_partial_face.jpg        yunet 0.95  110.4   193  1822 -0.01 1.00  ok  ok
    obama_partial_face2.jpg       yunet 0.93  100.4   198  1523 +0.05 1.00  ok  ok
    rocket.jpg                    no face
    alexander_gerst_1.jpg         yunet 0.95  218.2   452  1256 -0.00 1.00  ok  ok
    alexander_gerst_2_profile.jpg yunet 0.93   75.0   238  2098 -0.54 0.73  no  ok
        - gallery: head turned: yaw ratio -0.54 beyond ±0.40
    andrew_morgan_1.jpg           yunet 0.95  232.4   487  2091 -0.03 1.00  ok  ok
    andrew_morgan_2.jpg           yunet 0.95   79.3   177   147 -0.02 1.00  ok  ok
    anne_mcclain_1.jpg            yunet 0.95  216.8   475  4918 -0.00 1.00  ok  ok
    barack_obama_1.jpg            yunet 0.95  115.0   240  1930 -0.02 1.00  ok  ok
    barack_obama_partial_face.jpg yunet 0.95  110.4   193  1822 -0.01 1.00  ok  ok
    christina_koch_1.jpg          yunet 0.95  222.0   445  2485 -0.04 1.00  ok  ok
    eileen_collins_1.jpg          yunet 0.93  212.9   449  2260 +0.00 1.00  ok  ok
    eileen_collins_2.png          yunet 0.93   47.1    90   649 -0.06 1.00  ok  ok
    jessica_meir_1.jpg            yunet 0.96  200.8   434  2762 -0.01 1.00  ok  ok
    joe_biden_1.jpg               yunet 0.69  131.4   422   814 +0.11 1.00  no  no
        - gallery: detector confidence 0.69 below the floor 0.80 (YUNET)
        - probe: detector confidence 0.69 below the floor 0.75 (YUNET)
    joe_biden_1.jpg               yunet 0.63   99.5   368   422 +0.57 0.00  no  no
        - gallery: head turned: yaw ratio +0.57 beyond ±0.40
        - gallery: detector confidence 0.63 below the floor 0.80 (YUNET)
        - gallery: landmarks fit a face poorly: consistency 0.00 below the floor 0.50
        - probe: detector confidence 0.63 below the floor 0.75 (YUNET)
        - probe: landmarks fit a face poorly: consistency 0.00 below the floor 0.20
    joe_biden_1.jpg               yunet 0.94  208.8   438  1138 +0.03 1.00  ok  ok
    multi_morgan_hague.jpg        yunet 0.93   59.2   122   578 -0.04 1.00  ok  ok
    multi_morgan_hague.jpg        yunet 0.93   59.7   126   649 -0.05 1.00  ok  ok
    nick_hague_1.jpg              yunet 0.96  199.3   420  1987 -0.04 1.00  ok  ok
    noface_cat_chelsea.png        no face
    noface_coffee.png             no face
    noface_rocket.jpg             no face
    peggy_whitson_1.jpg           yunet 0.95  152.4   335  4878 +0.02 1.00  ok  ok
    scott_kelly_1.jpg             yunet 0.95   78.7   179   892 -0.04 1.00  ok  ok

How each floor follows from it, and from blurring and shrinking two portraits
(``python -m probity.engine.calibrate --model sface-int8 --degrade PHOTO``; "moved" is the
SFace distance from the untouched photo's descriptor, on the 0..2 scale whose FMR 1e-3
threshold is 1.128; dlib's figures in engine/quality.py are on its 0.6 scale):

- **detector confidence** (``min_yunet_confidence``), gallery 0.80, probe 0.75: every real
  face scores 0.92–0.96, and still 0.91–0.95 when blurred (radius 5) or shrunk until the eyes
  are 10 px apart; the only false boxes, two folds of the flag behind Biden in
  joe_biden_1.jpg, score 0.69 and 0.63. 0.80 sits 0.11 from both; the probe floor is a little
  lower for hard probes and still above both false boxes. YuNet does not box the mission patch
  of astronaut.png at all (dlib's HOG did, at 0.12).
- **yaw** (``max_abs_yaw_ratio``), gallery ±0.40, probe ±2.0: YuNet's nose tip follows the
  head, so frontal faces read −0.20…+0.11 and the Gerst profile −0.54; 0.40 keeps the profile
  out of galleries (a good probe, a poor reference: 1.00 from his portrait, where frontal
  pairs lie 0.51–0.98) as dlib's consistency floor did. dlib's five points read at most 0.26
  on real faces (profiles included), so the shared floor refuses none of them. The probe floor
  takes any pose.
- **sharpness** (variance of the Laplacian on the 112 × 112 chip), gallery 20, probe 5: real
  faces 147–4918. Blurring obama.jpg: radius 1 → 674 (moved 0.22), 2 → 177 (0.31),
  3 → 71 (0.36), 4 → 35 (0.39), 5 → 19 (0.48, refused by the gallery); andrew_morgan_1.jpg,
  twice the face, stays at 83 at radius 5 (0.36). SFace moves smoothly with blur, with no cliff
  to put a floor at; 20 refuses Obama at radius 5, where the move is 42 % of the FMR 1e-3
  threshold — dlib's floor 20 refuses at radius 3, 37 % of its 0.6. So the shared value holds
  for both chips (150 px for dlib, 112 px for SFace) and no per-model field is needed.
- **inter-eye distance**, gallery 20 px, probe 12 px: real faces 47–232 px. Shrinking
  obama.jpg / andrew_morgan_1.jpg: eyes 40 px → moved 0.31 / 0.35 (resampling alone),
  30 → 0.32 / 0.40, 25 → 0.36 / 0.48, 20 → 0.39 / 0.46, 15 → 0.54 / 0.54, 12 → 0.60 / 0.65,
  10 → 0.82 / 0.80. At the gallery's 20 px the move is 35–41 % of the threshold and at the
  probe's 12 px 53–57 %, the same fractions as dlib's at the same floors (0.21 of 0.6 at
  18.5 px, 0.32 at 13 px), so these floors too stay shared. YuNet still finds the face at
  10 px (score 0.91).
- **landmark consistency** (geometry of the five points), gallery 0.50, probe 0.20: real
  faces 1.00, the profile 0.73, the second flag box 0.00.
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
