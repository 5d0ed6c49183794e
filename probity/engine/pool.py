"""Running decode + analyse for many images at once.

dlib's Python bindings hold the GIL (two threads running the HOG detector take as long as one
running both photos: measured 1.17 s vs 1.23 s for 4 photos), so parallel work needs
processes. ``ProcessAnalysisPool`` starts ``workers`` processes (``spawn``: no fork of a parent
that holds database connections and a progress-bar thread), each loading the models once
(about 0.7 s). ``InlineAnalysisPool`` does the work in the caller's process, for one image at
a time and for tests with a fake engine. Both return futures, so callers keep their order.

Only the image bytes go to a worker and only (sha256, faces) come back: decoded pixels never
cross the process boundary.

**Workers die with their parent**, also when the parent is killed with SIGKILL and runs no
cleanup. Without this a worker outlives a killed ``probity enrol`` for minutes: it waits on
the pool's task queue, whose pipe other workers still hold open, so it never sees an end of
file. Each worker therefore starts a watchdog thread (``_exit_with_parent``) that waits on
``multiprocessing.parent_process().sentinel``: with the ``spawn`` context that is the read
end of a pipe whose only write end the parent holds, so the kernel closes it when the parent
dies, however it dies, and the wait returns at once; the thread then calls ``os._exit``.
It is the standard library's own mechanism (``parent_process().is_alive()`` reads the same
pipe), works on every platform ``spawn`` does, and cannot be fooled by a reused pid.

Linux's ``prctl(PR_SET_PDEATHSIG)`` was not chosen: it fires when the *thread* that forked
the worker exits, not the process, and ProcessPoolExecutor starts workers from whichever
thread calls ``submit`` (a job thread, a server's thread pool) or from its own management
thread, so a worker could be killed in the middle of a healthy run. One caveat of the
watchdog: it needs the GIL to run, and dlib holds the GIL while it analyses one image, so a
worker busy with an image exits when that image is done (seconds at most), not instantly.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
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


PARENT_GONE_EXIT = 70
"""The exit status of a worker that stopped because its parent process died."""


def _exit_with_parent() -> None:
    """In a worker: start a daemon thread that ends this process as soon as the parent dies
    (see the module docstring). Does nothing in a process that has no multiprocessing
    parent."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        # No cleanup to run: the worker holds no files or database connections, and
        # nobody is left to receive its results.
        os._exit(PARENT_GONE_EXIT)

    threading.Thread(target=watch, name="probity-parent-watchdog", daemon=True).start()


def _init_worker(
    settings: EngineSettings,
    model_key: str,
    home_models: Path | None,
    max_bytes: int,
    max_pixels: int,
    hog_pixel_budget: int | None,
) -> None:
    # The watchdog first: a parent killed while the model loads must not leave us behind.
    _exit_with_parent()
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

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes started so far (ProcessPoolExecutor starts them
        as work arrives, up to ``workers``): for tests and diagnostics."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
