"""Engine test helpers: decode a photo with the default limits, analyse it once per session."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from probity.config import LimitSettings
from probity.domain.faces import DetectorMode
from probity.engine.dlib_engine import DlibEngine
from probity.engine.images import decode_image, read_image_file
from probity.engine.types import AnalysedFace, DecodedImage

LIMITS = LimitSettings()

LoadPhoto = Callable[[Path], DecodedImage]
AnalysePhoto = Callable[..., list[AnalysedFace]]


def decode(data: bytes) -> DecodedImage:
    """Decode bytes with the default upload limits."""
    return decode_image(
        data, max_bytes=LIMITS.max_upload_bytes, max_pixels=LIMITS.max_image_pixels
    )


def encode(pixels: NDArray[np.uint8], fmt: str = "JPEG", **options: object) -> bytes:
    """Encode RGB pixels in memory (JPEG quality 95 unless told otherwise)."""
    if fmt == "JPEG":
        options.setdefault("quality", 95)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def distance(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))


@pytest.fixture(scope="session")
def load_photo() -> LoadPhoto:
    """Read a photo file with the default limits; decoded once per session."""
    cache: dict[Path, DecodedImage] = {}

    def load(path: Path) -> DecodedImage:
        if path not in cache:
            cache[path] = read_image_file(
                path, max_bytes=LIMITS.max_upload_bytes, max_pixels=LIMITS.max_image_pixels
            )
        return cache[path]

    return load


@pytest.fixture(scope="session")
def analyse_photo(engine: DlibEngine, load_photo: LoadPhoto) -> AnalysePhoto:
    """``analyse_photo(path, mode=None)``: the engine's faces for a file, computed once."""
    cache: dict[tuple[Path, DetectorMode | None], list[AnalysedFace]] = {}

    def analyse(path: Path, mode: DetectorMode | None = None) -> list[AnalysedFace]:
        key = (path, mode)
        if key not in cache:
            cache[key] = engine.analyse(load_photo(path), mode)
        return cache[key]

    return analyse
