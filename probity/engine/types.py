"""Types passed between engine stages and out to the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import DetectorKind, DetectorMode, FaceBox, ModelVersion, Quality

Vector = NDArray[np.float32]
"""One face descriptor, shape (dimension,), float32, as the model produced it (not normalised)."""


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """An image decoded by Pillow, EXIF orientation applied, as RGB uint8 (height, width, 3)."""

    pixels: NDArray[np.uint8]
    sha256: str  # of the original file bytes
    format: str  # Pillow's format name: JPEG, PNG, WEBP, HEIF...

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found by a detector, in full-resolution pixel coordinates."""

    box: FaceBox
    confidence: float
    detector: DetectorKind


@dataclass(frozen=True, slots=True, eq=False)
class AlignedFace:
    """A detection with its 5 landmarks (full-resolution (x, y) pixels, dlib's order: right eye
    outer, right eye inner, left eye outer, left eye inner, nose base — "right" is the
    subject's right, on the image's left) and the 150x150 RGB chip the embedder needs."""

    detection: Detection
    landmarks: tuple[tuple[float, float], ...]
    chip: NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class AnalysedFace:
    """Everything the services need about one face: where, how good, and its descriptor."""

    box: FaceBox
    quality: Quality
    descriptor: Vector


class FaceEngine(Protocol):
    """What the services use. ``DlibEngine`` is the default; tests below the services may fake it."""

    @property
    def model(self) -> ModelVersion: ...

    def analyse(self, image: DecodedImage, mode: DetectorMode | None = None) -> list[AnalysedFace]:
        """Detect, align, assess and embed every face in ``image`` (empty list: no face)."""
        ...
