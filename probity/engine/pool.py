"""Running decode + analyse for many images at once.

dlib's Python bindings hold the GIL (two threads running the HOG detector take as long as one
running both photos: measured 1.17 s vs 1.23 s for 4 photos), so parallel work needs
processes. ``ProcessAnalysisPool`` starts ``workers`` processes (``spawn``: no fork of a parent
that holds database connections and a progress-bar thread), each loading the models once
(about 0.7 s). ``InlineAnalysisPool`` does the work in the caller's process, for one image at
a time and for tests with a fake engine. Both return futures, so callers keep their order.

Only the image bytes go to a worker and only (sha256, faces) come back: decoded pixels never
cross the process boundary.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

from probity.config import EngineSettings
from probity.engine.images import decode_image
from probity.engine.types import AnalysedFace, FaceEngine

Analysis = tuple[str, list[AnalysedFace]]
"""The sha256 of the image bytes, and every face found in it."""


class AnalysisPool(Protocol):
    workers: int

    def submit(self, data: bytes) -> Future[Analysis]:
        """Decode and analyse ``data``; the future raises the decode error (a ProbityError)."""
        ...

    def close(self) -> None: ...


class InlineAnalysisPool:
    """Analyses in the calling process; the returned future is already done."""

    workers = 1

    def __init__(
        self,
        engine: FaceEngine,
        *,
        max_bytes: int,
        max_pixels: int,
        hog_pixel_budget: int | None = None,
    ) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.hog_pixel_budget = hog_pixel_budget

    def submit(self, data: bytes) -> Future[Analysis]:
        future: Future[Analysis] = Future()
        try:
            image = decode_image(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
            faces = self.engine.analyse(image, hog_pixel_budget=self.hog_pixel_budget)
            future.set_result((image.sha256, faces))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def close(self) -> None:
        return None


_worker_engine: FaceEngine | None = None
_worker_limits: tuple[int, int] = (0, 0)
_worker_pixel_budget: int | None = None


def _init_worker(
    settings: EngineSettings,
    model_key: str,
    home_models: Path | None,
    max_bytes: int,
    max_pixels: int,
    hog_pixel_budget: int | None,
) -> None:
    # A per-process engine: each worker process holds its own copy of the model it runs.
    global _worker_engine, _worker_limits, _worker_pixel_budget
    from probity.engine.registry import build_engine_set

    _worker_engine = build_engine_set(settings, home_models=home_models).get(model_key)
    _worker_limits = (max_bytes, max_pixels)
    _worker_pixel_budget = hog_pixel_budget


def _analyse_in_worker(data: bytes) -> Analysis:
    assert _worker_engine is not None, "worker not initialised"
    max_bytes, max_pixels = _worker_limits
    image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    return image.sha256, _worker_engine.analyse(image, hog_pixel_budget=_worker_pixel_budget)


class ProcessAnalysisPool:
    """``workers`` processes, each with its own engine of ``model_key`` built from
    ``settings`` (and the operator model files in ``home_models``)."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        model_key: str,
        home_models: Path | None = None,
        workers: int,
        max_bytes: int,
        max_pixels: int,
        hog_pixel_budget: int | None = None,
    ) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(settings, model_key, home_models, max_bytes, max_pixels, hog_pixel_budget),
        )

    def submit(self, data: bytes) -> Future[Analysis]:
        return self._executor.submit(_analyse_in_worker, data)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
