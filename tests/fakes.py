"""Fakes below the services layer, for fast unit tests (the engine and end-to-end tests use
the real dlib models on real photos).

``FakeEngine`` returns, for an image, the faces registered for its exact pixel content. Tests
make distinct images with ``make_image(seed)`` and give each one or more descriptors.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from probity.domain.faces import DetectorKind, DetectorMode, FaceBox, ModelVersion, Quality
from probity.engine.types import AnalysedFace, DecodedImage

FAKE_MODEL = ModelVersion("dlib-resnet-v1", "fake-1", 128)

GOOD_QUALITY = Quality(
    inter_eye_px=80.0,
    face_width_px=200.0,
    sharpness=150.0,
    yaw_ratio=0.02,
    detector=DetectorKind.HOG,
    detector_confidence=1.5,
    landmark_consistency=0.95,
)
BAD_QUALITY = Quality(
    inter_eye_px=30.0,
    face_width_px=90.0,
    sharpness=40.0,
    yaw_ratio=0.1,
    detector=DetectorKind.HOG,
    detector_confidence=0.05,
    landmark_consistency=0.2,
)


def make_image(seed: int, size: int = 64, fmt: str = "PNG") -> bytes:
    """A small random image, distinct for each seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def unit(seed: int, dim: int = 128) -> np.ndarray:
    """A random descriptor with dlib-like norm (about 1.45)."""
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return (v / np.linalg.norm(v) * 1.45).astype(np.float32)


def near(vector: np.ndarray, distance: float, seed: int) -> np.ndarray:
    """A vector at exactly ``distance`` (Euclidean) from ``vector``."""
    noise = np.random.default_rng(seed).normal(size=vector.shape).astype(np.float32)
    noise /= np.linalg.norm(noise)
    return (vector + noise * distance).astype(np.float32)


class FakeEngine:
    def __init__(self) -> None:
        self._faces: dict[str, list[AnalysedFace]] = {}
        self.calls = 0

    @property
    def model(self) -> ModelVersion:
        return FAKE_MODEL

    def register(
        self, image: bytes, *descriptors: np.ndarray, quality: Quality = GOOD_QUALITY
    ) -> bytes:
        """Make ``image`` show one face per descriptor (left to right)."""
        self._faces[_pixel_key(image)] = [
            AnalysedFace(FaceBox(10 + 100 * i, 10, 50, 50), quality, d.astype(np.float32))
            for i, d in enumerate(descriptors)
        ]
        return image

    def add_face(self, image: bytes, descriptor: np.ndarray, quality: Quality) -> None:
        faces = self._faces.setdefault(_pixel_key(image), [])
        faces.append(AnalysedFace(FaceBox(10 + 100 * len(faces), 10, 50, 50), quality, descriptor))

    def analyse(
        self,
        image: DecodedImage,
        mode: DetectorMode | None = None,
        *,
        hog_pixel_budget: int | None = None,
    ) -> list[AnalysedFace]:
        self.calls += 1
        return list(self._faces.get(hashlib.sha256(image.pixels.tobytes()).hexdigest(), []))


def _pixel_key(data: bytes) -> str:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return hashlib.sha256(pixels.tobytes()).hexdigest()
