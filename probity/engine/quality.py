"""Stage 4: measure how usable a face is, and say in words why it falls below a floor.

:func:`assess_quality` fills every :class:`~probity.domain.faces.Quality` field from an
:class:`~probity.engine.types.AlignedFace`; :func:`quality_reasons` compares it with a
gallery's :class:`~probity.domain.faces.QualityFloor`. Both are pure and cheap (about 1 ms).

Landmark geometry is read in the face's own frame, so a tilted head scores like an upright
one: the x axis runs from the image-left eye centre to the image-right eye centre, y points
down the face (towards the nose), and lengths are in units of the inter-eye distance (IED).

``landmark_consistency`` = (1 − landmark drift) × geometry, where drift (measured by
:func:`probity.engine.align.landmark_drift`) says whether the points are anchored to the image,
and geometry (:func:`landmark_geometry`) whether they are arranged like a face. Geometry alone
cannot catch a false detection: dlib's predictor falls back to an average face shape, so the
mission-patch "face" has perfect proportions (nose 0.73 IED below the eyes, yaw −0.06) — but its
points drift with the box (0.91) and frontal faces' do not (0.01–0.26).

Calibration of the floors (dlib 20.0.1, face_recognition_models 0.3.0, default EngineSettings:
AUTO detection, HOG upsample 1), on every photo in tests/data and ../shared/faces (astronaut.png
is eileen_collins_2.png, obama.jpg is barack_obama_1.jpg); "gal" is the gallery floor
``QualityFloor()``, "prb" the probe floor ``PROBE_QUALITY_FLOOR``. Made with
``python -m probity.engine.calibrate tests/data ../shared/faces``::

    photo                         det  conf eye px width sharp   yaw drift geom cons gal prb
    32bit.png                     hog  1.50  119.0   268   150 -0.13  0.08 1.00 0.92  ok  ok
    astronaut.png                 hog  0.12   34.0    90   659 -0.06  0.91 1.00 0.09  no  no
        - gallery: detector confidence 0.12 below the floor 0.30 (HOG)
        - gallery: landmarks fit a face poorly: consistency 0.09 below the floor 0.50
        - probe: detector confidence 0.12 below the floor 0.30 (HOG)
        - probe: landmarks fit a face poorly: consistency 0.09 below the floor 0.20
    astronaut.png                 hog  1.16   43.1    91   199 +0.02  0.01 1.00 0.99  ok  ok
    biden.jpg                     hog  1.59  118.2   308   111 +0.09  0.06 1.00 0.94  ok  ok
    chelsea.png                   no face
    coffee.png                    no face
    obama.jpg                     hog  1.99  105.5   269  1075 -0.01  0.06 1.00 0.94  ok  ok
    obama2.jpg                    hog  1.51  119.4   268   154 -0.13  0.05 1.00 0.95  ok  ok
    obama3.jpg                    hog  1.11  121.7   273    76 +0.10  0.26 1.00 0.74  ok  ok
    obama_partial_face.jpg        hog  0.86  102.5   248  1241 -0.09  0.07 1.00 0.93  ok  ok
    obama_partial_face2.jpg       hog  0.70   90.6   269   947 +0.12  0.10 1.00 0.90  ok  ok
    rocket.jpg                    no face
    alexander_gerst_1.jpg         hog  1.60  206.2   555   450 -0.00  0.05 1.00 0.95  ok  ok
    alexander_gerst_2_profile.jpg cnn  1.09   75.0   198   740 -0.26  0.57 1.00 0.43  no  ok
        - gallery: landmarks fit a face poorly: consistency 0.43 below the floor 0.50
    andrew_morgan_1.jpg           hog  1.40  209.0   556   547 -0.05  0.05 1.00 0.95  ok  ok
    andrew_morgan_2.jpg           hog  2.57   79.0   187    53 +0.06  0.01 1.00 0.99  ok  ok
    anne_mcclain_1.jpg            hog  2.07  212.1   464   701 -0.02  0.09 1.00 0.91  ok  ok
    barack_obama_1.jpg            hog  1.99  105.5   269  1075 -0.01  0.06 1.00 0.94  ok  ok
    barack_obama_partial_face.jpg hog  0.86  102.5   248  1241 -0.09  0.07 1.00 0.93  ok  ok
    christina_koch_1.jpg          hog  1.95  193.6   464   545 -0.00  0.06 1.00 0.94  ok  ok
    eileen_collins_1.jpg          hog  1.59  213.0   464   240 +0.03  0.04 1.00 0.96  ok  ok
    eileen_collins_2.png          hog  0.12   34.0    90   659 -0.06  0.91 1.00 0.09  no  no
        - gallery: detector confidence 0.12 below the floor 0.30 (HOG)
        - gallery: landmarks fit a face poorly: consistency 0.09 below the floor 0.50
        - probe: detector confidence 0.12 below the floor 0.30 (HOG)
        - probe: landmarks fit a face poorly: consistency 0.09 below the floor 0.20
    eileen_collins_2.png          hog  1.16   43.1    91   199 +0.02  0.01 1.00 0.99  ok  ok
    jessica_meir_1.jpg            hog  1.65  196.5   463   587 -0.02  0.05 1.00 0.95  ok  ok
    joe_biden_1.jpg               hog  1.05  188.2   463   356 +0.04  0.04 1.00 0.96  ok  ok
    multi_morgan_hague.jpg        hog  1.58   54.1   130   139 -0.04  0.04 1.00 0.96  ok  ok
    multi_morgan_hague.jpg        hog  1.43   54.6   130   186 -0.05  0.07 1.00 0.93  ok  ok
    nick_hague_1.jpg              hog  2.90  177.6   464   416 -0.09  0.04 1.00 0.96  ok  ok
    noface_cat_chelsea.png        no face
    noface_coffee.png             no face
    noface_rocket.jpg             no face
    peggy_whitson_1.jpg           hog  2.03  151.5   322   499 +0.03  0.05 1.00 0.95  ok  ok
    scott_kelly_1.jpg             hog  1.78   79.1   187   508 -0.02  0.01 1.00 0.99  ok  ok

How each value follows from it (real faces = every row but the mission patch):

- detector confidence, 0.30 for both floors: HOG real faces 0.70–2.90, the patch 0.12. The
  CNN run on every photo (``--mode cnn``) gives 1.05–1.10, except 0.55 for
  obama_partial_face2.jpg (half a face); the CNN does not fire on the patch.
- landmark consistency: frontal faces 0.74–0.99, the Gerst profile 0.43 (the 5-point
  predictor is not made for profiles: its points drift 0.57), the patch 0.09. Gallery 0.50
  keeps profiles out of enrolment; probe 0.20 sits about 2× from both the profile and the
  patch.
- sharpness, gallery 20: real faces 53–1241. Blurring obama.jpg (Gaussian radius 3) brings it
  to 18 and moves the descriptor 0.22 from the sharp one, a third of dlib's 0.6 threshold
  (radius 4: 8.8 and 0.30; radius 5: 4.5 and 0.38, the probe floor's 5).
- inter-eye distance, gallery 20 px: real faces 43–213. Shrinking obama.jpg until the eyes are
  18.5 px apart moves its descriptor 0.21 (13 px: 0.32, about the probe floor's 12; HOG with
  upsample 1 still finds it there). It does not stop the patch (34 px).
- yaw ratio, gallery ±0.40 (set for YuNet's points, see engine/onnx_quality.py; it was ±0.9):
  real faces read at most 0.26 — the Gerst *profile*, because the
  5-point predictor pulls its points towards a frontal layout; frontal faces read ≤ 0.13. The
  ratio cannot see profiles, so this bound only catches landmarks that make no sense; profiles
  show up as low landmark consistency instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import DetectorKind, Quality, QualityFloor
from probity.engine.types import AlignedFace

GEOMETRY_BANDS: dict[str, tuple[float, float, float]] = {
    # measure: (low, high, tolerance) in IED units. 1.0 inside [low, high], falling linearly
    # to 0 at low - tolerance and high + tolerance. Real faces we measured are in brackets.
    "nose_below_eyes": (0.4, 1.2, 0.3),  # [0.56, 0.93]
    "eye_width": (0.2, 0.7, 0.15),  # outer-inner corner distance [0.34, 0.45]
    "outer_corner_offset": (0.1, 0.35, 0.1),  # outer corner beyond the eye centre [0.17, 0.23]
    "corner_off_eye_line": (0.0, 0.15, 0.15),  # |y| of each eye corner [0.00, 0.03]
    "ied_per_box_width": (0.25, 0.65, 0.15),  # ties landmarks to the box [0.34, 0.47]
}


def assess_quality(aligned: AlignedFace) -> Quality:
    """Measure one aligned face (see :class:`Quality` for each field's meaning and unit)."""
    points = np.asarray(aligned.landmarks, dtype=np.float64)
    left_eye, right_eye = eye_centres(points)
    inter_eye = float(np.linalg.norm(right_eye - left_eye))
    return Quality(
        inter_eye_px=inter_eye,
        face_width_px=float(aligned.detection.box.width),
        sharpness=sharpness(aligned.chip),
        yaw_ratio=yaw_ratio(points),
        detector=aligned.detection.detector,
        detector_confidence=aligned.detection.confidence,
        landmark_consistency=(1.0 - aligned.landmark_drift)
        * landmark_geometry(points, box_width=aligned.detection.box.width),
    )


def eye_centres(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(image-left eye centre, image-right eye centre): the midpoints of each eye's corners."""
    right = (points[0] + points[1]) / 2  # dlib points 0, 1: the eye on the image's right
    left = (points[2] + points[3]) / 2
    return left, right


def _frame(
    points: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    """The face frame: origin (eye midpoint), x unit vector, y unit vector (down), IED."""
    left, right = eye_centres(points)
    axis = right - left
    inter_eye = float(np.linalg.norm(axis))
    if inter_eye < 1e-6:
        inter_eye = 1e-6
    x = axis / inter_eye
    y = np.array([-x[1], x[0]])  # x turned 90° clockwise on screen: "down" for an upright face
    return (left + right) / 2, x, y, inter_eye


def yaw_ratio(points: NDArray[np.float64]) -> float:
    """Nose offset from the eye midline along the eye axis, in IED; signed, 0 frontal, positive
    when the nose points to the image's right (the subject turned to their left).

    With 5 landmarks this under-reads strong profiles: the predictor was trained on near-frontal
    faces (the Gerst profile, a near side view, reads 0.26).
    """
    origin, x, _, inter_eye = _frame(points)
    return float((points[4] - origin) @ x / inter_eye)


def landmark_geometry(points: NDArray[np.float64], *, box_width: float) -> float:
    """0..1: how well the 5 points are arranged like a face (the worst of the measures in
    :data:`GEOMETRY_BANDS`)."""
    origin, x, y, inter_eye = _frame(points)
    local = (points - origin) @ np.stack([x, y], axis=1) / inter_eye  # (5, 2) in IED units
    left, right = eye_centres(local)
    measures = {
        "nose_below_eyes": [local[4, 1]],
        "eye_width": [
            float(np.linalg.norm(local[0] - local[1])),
            float(np.linalg.norm(local[2] - local[3])),
        ],
        "outer_corner_offset": [local[0, 0] - right[0], left[0] - local[2, 0]],
        "corner_off_eye_line": [abs(local[i, 1]) for i in range(4)],
        "ied_per_box_width": [inter_eye / max(box_width, 1.0)],
    }
    return min(
        _band(float(value), *GEOMETRY_BANDS[name])
        for name, values in measures.items()
        for value in values
    )


def _band(value: float, low: float, high: float, tolerance: float) -> float:
    if low <= value <= high:
        return 1.0
    gap = low - value if value < low else value - high
    return max(0.0, 1.0 - gap / tolerance)


def sharpness(chip: NDArray[np.uint8]) -> float:
    """Variance of the 4-neighbour Laplacian of the grey chip (unitless, grey levels²).

    Measured on the 150 × 150 chip, so it is comparable between large and small faces: a small
    face enlarged to 150 px is soft and scores low, which is fair (it holds less detail).
    """
    rgb = chip.astype(np.float64)
    grey = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    )
    return float(laplacian.var())


def quality_reasons(quality: Quality, floor: QualityFloor) -> list[str]:
    """Readable reasons ``quality`` is below ``floor``; empty when the face is acceptable."""
    reasons: list[str] = []
    if quality.inter_eye_px < floor.min_inter_eye_px:
        reasons.append(
            f"eyes {quality.inter_eye_px:.1f} px apart, below the floor "
            f"{floor.min_inter_eye_px:.0f} px (face too small)"
        )
    if quality.sharpness < floor.min_sharpness:
        reasons.append(
            f"sharpness {quality.sharpness:.1f} below the floor {floor.min_sharpness:.1f} "
            "(blurred or out of focus)"
        )
    if abs(quality.yaw_ratio) > floor.max_abs_yaw_ratio:
        reasons.append(
            f"head turned: yaw ratio {quality.yaw_ratio:+.2f} beyond ±{floor.max_abs_yaw_ratio:.2f}"
        )
    min_confidence = {
        DetectorKind.HOG: floor.min_hog_confidence,
        DetectorKind.CNN: floor.min_cnn_confidence,
        DetectorKind.YUNET: floor.min_yunet_confidence,
    }[quality.detector]
    if quality.detector_confidence < min_confidence:
        reasons.append(
            f"detector confidence {quality.detector_confidence:.2f} below the floor "
            f"{min_confidence:.2f} ({quality.detector.name})"
        )
    if quality.landmark_consistency < floor.min_landmark_consistency:
        reasons.append(
            f"landmarks fit a face poorly: consistency {quality.landmark_consistency:.2f} "
            f"below the floor {floor.min_landmark_consistency:.2f}"
        )
    return reasons
