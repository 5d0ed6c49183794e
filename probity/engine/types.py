"""Types passed between engine stages and out to the services."""

from __future__ import annotations

from collections.abc import Sequence
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
    landmarks: tuple[tuple[float, float], ...] | None = None
    """YuNet's five points (full-resolution pixels: image-left eye, image-right eye, nose tip,
    image-left and image-right mouth corners); None for dlib's detectors, whose landmarks come
    from the shape predictor at alignment."""


@dataclass(frozen=True, slots=True, eq=False)
class AlignedFace:
    """A detection with its 5 landmarks and the 150x150 RGB chip the embedder needs.

    ``landmarks`` are full-resolution (x, y) pixels in dlib's order (measured on upright
    portraits): 0 outer and 1 inner corner of the eye on the image's *right* (the subject's
    left eye), 2 outer and 3 inner corner of the eye on the image's left (the subject's right
    eye), 4 the base of the nose.

    ``landmark_drift`` (0..1) is how far the landmarks follow the box when the detector box is
    perturbed: near 0 on a face (the points hold on to eyes and nose), near 1 on a texture or a
    badge. The quality stage turns it into ``Quality.landmark_consistency``.
    """

    detection: Detection
    landmarks: tuple[tuple[float, float], ...]
    chip: NDArray[np.uint8]
    landmark_drift: float


@dataclass(frozen=True, slots=True, eq=False)
class AnalysedFace:
    """Everything the services need about one face: where, how good, and its descriptor."""

    box: FaceBox
    quality: Quality
    descriptor: Vector
    detection: Detection | None = None  # what the detector found, to embed it with another model


class FaceEngine(Protocol):
    """What the services use: ``OnnxEngine`` (YuNet + an ONNX recogniser, the default for new
    galleries) and ``DlibEngine`` (existing galleries); tests below the services may fake it.

    ``analyse`` detects and describes; ``describe`` embeds faces another engine detected (a
    search over galleries of two models detects the probe's faces once). Both return faces
    left to right; ``describe`` returns None for a detection this engine cannot align."""

    @property
    def model(self) -> ModelVersion: ...

    def describe(
        self, image: DecodedImage, detections: Sequence[Detection]
    ) -> list[AnalysedFace | None]:
        """Align, assess and embed each of ``detections`` (same order)."""
        ...

    def analyse(
        self,
        image: DecodedImage,
        mode: DetectorMode | None = None,
        *,
        hog_pixel_budget: int | None = None,
    ) -> list[AnalysedFace]:
        """Detect, align, assess and embed every face in ``image`` (empty list: no face).
        ``hog_pixel_budget``: cap the pixels HOG scans (cheaper on large photos)."""
        ...
