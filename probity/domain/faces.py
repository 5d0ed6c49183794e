"""What the engine reports about a face: box, landmarks, quality.

Pixel units are pixels of the image *as decoded and EXIF-rotated*, before any downscaling the
engine does internally (the engine maps its boxes back to full resolution).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class DetectorKind(StrEnum):
    HOG = "hog"  # dlib's frontal HOG + linear SVM: fast, frontal faces only
    CNN = "cnn"  # dlib's MMOD CNN: finds profiles and small faces, seconds per photo on a CPU
    YUNET = "yunet"  # YuNet (ONNX, 5 landmarks): profiles and small faces in 3-45 ms


class DetectorMode(StrEnum):
    """Which detector(s) to run on an image."""

    AUTO = "auto"  # the engine's own choice: YuNet (ONNX engines); HOG, then CNN (dlib)
    HOG = "hog"
    CNN = "cnn"
    YUNET = "yunet"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face rectangle: left/top corner and size, in pixels (may extend past the image edge)."""

    left: int
    top: int
    width: int
    height: int

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.width, self.height]

    @classmethod
    def from_list(cls, values: list[int]) -> FaceBox:
        left, top, width, height = (int(v) for v in values)
        return cls(left, top, width, height)


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured quality of one detected face.

    - ``inter_eye_px``: distance between the eye centres from the 5-point landmarks, in pixels.
      ISO/IEC 19794-5 asks 60 px or more for a token portrait; dlib works down to about 20.
    - ``face_width_px``: detector box width in pixels.
    - ``sharpness``: variance of the Laplacian of the grey 150x150 aligned chip (unitless;
      below about 20 the chip is visibly blurred).
    - ``yaw_ratio``: nose offset from the eye midline divided by inter-eye distance, signed
      (positive: the nose points to the image's right); 0 is frontal. With only 5 landmarks
      a near-profile still reads about ±0.26, so profiles show up mainly as low
      ``landmark_consistency``.
    - ``detector`` and ``detector_confidence``: which detector found the face and its score
      (HOG: SVM margin, 0 is its default threshold; CNN: MMOD confidence).
    - ``landmark_consistency``: 0..1, ``(1 - drift) × geometry``: how well the 5 landmarks
      fit a face's geometry and how firmly they hold on to eyes and nose when the detector box
      is shifted by 10 % (see engine/align.py). Frontal faces score 0.74 or more, a profile
      about 0.43, a badge or texture below 0.1.
    """

    inter_eye_px: float
    face_width_px: float
    sharpness: float
    yaw_ratio: float
    detector: DetectorKind
    detector_confidence: float
    landmark_consistency: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "inter_eye_px": round(self.inter_eye_px, 1),
            "face_width_px": round(self.face_width_px, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw_ratio": round(self.yaw_ratio, 3),
            "detector": self.detector.value,
            "detector_confidence": round(self.detector_confidence, 3),
            "landmark_consistency": round(self.landmark_consistency, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, float | str]) -> Quality:
        """The inverse of ``as_dict`` (values come back rounded as stored)."""
        return cls(
            inter_eye_px=float(data["inter_eye_px"]),
            face_width_px=float(data["face_width_px"]),
            sharpness=float(data["sharpness"]),
            yaw_ratio=float(data["yaw_ratio"]),
            detector=DetectorKind(str(data["detector"])),
            detector_confidence=float(data["detector_confidence"]),
            landmark_consistency=float(data["landmark_consistency"]),
        )


@dataclass(frozen=True, slots=True)
class QualityFloor:
    """The minimum quality a gallery accepts at enrolment (and a probe needs to be searched).

    Defaults are set from the photos in tests/data and ../shared/faces, for both engines (the
    tables are in engine/quality.py for dlib and engine/onnx_quality.py for YuNet + SFace;
    ``python -m probity.engine.calibrate [--model sface-int8] DIR...`` prints them): every real
    frontal face there passes; the false HOG "face" on the mission patch of astronaut.png does
    not (confidence 0.12, consistency 0.09), nor the false YuNet boxes on the flag of
    joe_biden_1.jpg (scores 0.69 and 0.63, below ``min_yunet_confidence``); and neither does
    the Gerst profile (dlib: consistency 0.43; YuNet: yaw −0.54 beyond ±0.40), which is a fine
    probe but a poor gallery image. Sharpness and inter-eye floors are shared by both engines:
    at the same values they refuse faces whose descriptor has moved the same fraction of each
    model's threshold (measured in engine/onnx_quality.py), so no per-model field is needed.
    """

    min_inter_eye_px: float = 20.0
    min_sharpness: float = 20.0
    max_abs_yaw_ratio: float = 0.4  # YuNet frontal ≤ 0.20, profile 0.54; dlib ≤ 0.26
    min_hog_confidence: float = 0.3
    min_cnn_confidence: float = 0.3
    min_landmark_consistency: float = 0.5
    min_yunet_confidence: float = 0.8  # real faces 0.91–0.96, false boxes 0.63–0.69

    def as_dict(self) -> dict[str, float]:
        return {
            "min_inter_eye_px": self.min_inter_eye_px,
            "min_sharpness": self.min_sharpness,
            "max_abs_yaw_ratio": self.max_abs_yaw_ratio,
            "min_hog_confidence": self.min_hog_confidence,
            "min_cnn_confidence": self.min_cnn_confidence,
            "min_landmark_consistency": self.min_landmark_consistency,
            "min_yunet_confidence": self.min_yunet_confidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> QualityFloor:
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """The identity of an embedding model: every template and every gallery records one."""

    name: str
    version: str
    dimension: int

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class FaceRefusal:
    """Why a detected face was not enrolled or searched; ``reasons`` are readable sentences."""

    box: FaceBox
    reasons: tuple[str, ...] = field(default_factory=tuple)


PROBE_QUALITY_FLOOR = QualityFloor(
    min_inter_eye_px=12.0,
    min_sharpness=5.0,
    max_abs_yaw_ratio=2.0,
    min_hog_confidence=0.3,
    min_cnn_confidence=0.3,
    min_landmark_consistency=0.2,
    min_yunet_confidence=0.75,
)
"""Probes are searched at a lower floor than galleries accept (an investigator's probe is
what it is: a profile, a small face), but detections that are not faces are still refused.
The quality of every probe face is reported with its candidates."""
