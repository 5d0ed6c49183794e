"""One engine shared by a server's request threads: dlib's detectors are not thread-safe
(4 threads on one HOG detector corrupted the heap within seconds before the locks in
``engine/models.py``), so this runs them from several threads at once and checks that the
process survives and every thread gets the serial answer."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from probity.engine.dlib_engine import DlibEngine
from probity.engine.types import DecodedImage


def test_hog_from_many_threads_matches_serial(
    engine: DlibEngine, load_photo: Callable[[Path], DecodedImage], data_dir: Path
) -> None:
    pixels = load_photo(data_dir / "obama.jpg").pixels
    small = np.ascontiguousarray(pixels[::2, ::2])
    serial = engine.models.run_hog(small, upsample=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: engine.models.run_hog(small, upsample=1), range(40)))
    assert serial and all(r == serial for r in results)


def test_whole_analysis_from_many_threads_matches_serial(
    engine: DlibEngine, load_photo: Callable[[Path], DecodedImage], data_dir: Path
) -> None:
    images = [load_photo(data_dir / name) for name in ("obama.jpg", "biden.jpg")]
    serial = [engine.analyse(image)[0].descriptor for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda i: engine.analyse(images[i % 2])[0].descriptor, range(8)))
    for i, descriptor in enumerate(found):
        assert np.allclose(descriptor, serial[i % 2], atol=1e-6)
