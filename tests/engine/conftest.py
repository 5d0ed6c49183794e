"""Engine test fixtures: decode with the default limits, analyse each photo once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from probity.config import LimitSettings
from probity.domain.faces import DetectorMode
from probity.engine.dlib_engine import DlibEngine
from probity.engine.images import decode_image, read_image_file
from probity.engine.types import AnalysedFace, DecodedImage

LIMITS = LimitSettings()


@pytest.fixture(scope="session")
def decode() -> Callable[[bytes], DecodedImage]:
    """``decode(data)``: decode_image with the default upload limits."""

    def run(data: bytes) -> DecodedImage:
        return decode_image(
            data, max_bytes=LIMITS.max_upload_bytes, max_pixels=LIMITS.max_image_pixels
        )

    return run


@pytest.fixture(scope="session")
def load_photo() -> Callable[[Path], DecodedImage]:
    """``load_photo(path)``: read_image_file with the default limits, once per path."""
    cache: dict[Path, DecodedImage] = {}

    def load(path: Path) -> DecodedImage:
        if path not in cache:
            cache[path] = read_image_file(
                path, max_bytes=LIMITS.max_upload_bytes, max_pixels=LIMITS.max_image_pixels
            )
        return cache[path]

    return load


@pytest.fixture(scope="session")
def analyse_photo(
    engine: DlibEngine, load_photo: Callable[[Path], DecodedImage]
) -> Callable[..., list[AnalysedFace]]:
    """``analyse_photo(path, mode=None)``: the engine's faces for a file, computed once."""
    cache: dict[tuple[Path, DetectorMode | None], list[AnalysedFace]] = {}

    def analyse(path: Path, mode: DetectorMode | None = None) -> list[AnalysedFace]:
        key = (path, mode)
        if key not in cache:
            cache[key] = engine.analyse(load_photo(path), mode)
        return cache[key]

    return analyse
