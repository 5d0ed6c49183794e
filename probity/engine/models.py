"""dlib's face models: where the weights are, and the only code that touches ``dlib`` objects.

The weights come from the PyPI package ``face_recognition_models`` (0.3.0, CC0 weights by
Davis King). That package imports the deprecated ``pkg_resources`` at import time, so it is
located with ``importlib.util.find_spec`` and never imported. Nothing is downloaded: a missing
or altered file is an :class:`~probity.errors.IntegrityError`, because every stored template
claims :data:`MODEL` and would be meaningless if the weights were different.

:class:`DlibModels` loads each model on first use (a lock makes that safe from any thread) and
wraps the four dlib calls the stages need in small typed methods, so ``dlib`` types (rectangles,
``full_object_detection``, ``vector``) never leave this module.

None of dlib's detectors is safe to call from two threads at once: the CNN and the ResNet
keep scratch tensors inside the network object, and the HOG scanner keeps its feature pyramid
in the detector (measured: 4 threads calling ``run_hog`` on one detector corrupt the heap
within seconds, "double free or corruption", SIGSEGV). Each model therefore has its own lock.
dlib holds the GIL while it computes anyway, so the locks cost no parallelism; a server gets
parallel searches only from several processes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from probity.domain.faces import FaceBox, ModelVersion
from probity.errors import IntegrityError

MODEL: Final = ModelVersion(
    name="dlib-resnet-v1", version="face_recognition_models-0.3.0", dimension=128
)
"""The embedding model every template made by this engine records."""

MODELS_PACKAGE: Final = "face_recognition_models"

HOG_DETECTOR = "hog"  # built into dlib: get_frontal_face_detector() needs no file


@dataclass(frozen=True, slots=True)
class WeightsFile:
    name: str
    sha256: str  # of the file as shipped in face_recognition_models 0.3.0


CNN_DETECTOR_FILE: Final = WeightsFile(
    "mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
)
SHAPE_PREDICTOR_FILE: Final = WeightsFile(
    "shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
)
RESNET_FILE: Final = WeightsFile(
    "dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
)
WEIGHTS_FILES: Final = (CNN_DETECTOR_FILE, SHAPE_PREDICTOR_FILE, RESNET_FILE)

Point = tuple[float, float]


def find_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models``, without importing it.

    Raises :class:`IntegrityError` when the package is not installed.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None:
        raise IntegrityError(
            f"the package '{MODELS_PACKAGE}' is not installed: it ships the dlib face model "
            f"weights (install it with: pip install {MODELS_PACKAGE}==0.3.0)"
        )
    if spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        package_dir = Path(spec.origin).parent
    else:  # pragma: no cover - a namespace package without locations is not a real install
        raise IntegrityError(f"cannot locate the files of the package '{MODELS_PACKAGE}'")
    return package_dir / "models"


def weights_path(models_dir: Path, weights: WeightsFile, *, verify: bool = True) -> Path:
    """Path of one weights file; with ``verify``, check its sha256 (about 30 ms for 22 MB)."""
    path = models_dir / weights.name
    if not path.is_file():
        raise IntegrityError(
            f"dlib weights file missing: {path} (reinstall {MODELS_PACKAGE}==0.3.0)"
        )
    if verify:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != weights.sha256:
            raise IntegrityError(
                f"dlib weights file {path} does not match {MODEL.key} "
                f"(sha256 {digest.hexdigest()[:12]}…, expected {weights.sha256[:12]}…): "
                "templates made with it would not be comparable"
            )
    return path


def _dlib() -> Any:
    """Import dlib on first use (about 0.1 s), not when the engine package is imported."""
    import dlib

    return dlib


def _rectangle(box: FaceBox) -> Any:
    """A dlib rectangle; dlib's right/bottom are inclusive, hence the ``- 1``."""
    return _dlib().rectangle(box.left, box.top, box.left + box.width - 1, box.top + box.height - 1)


class DlibModels:
    """The four dlib models, each loaded on first use; safe to share between threads.

    ``models_dir`` defaults to the installed package's folder; ``verify`` checks each file's
    sha256 against the published one when it is first loaded.
    """

    def __init__(self, models_dir: Path | None = None, *, verify: bool = True) -> None:
        self._models_dir = models_dir
        self._verify = verify
        self._loaded: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._cnn_lock = threading.Lock()
        self._hog_lock = threading.Lock()
        self._shape_lock = threading.Lock()
        self._resnet_lock = threading.Lock()

    @property
    def models_dir(self) -> Path:
        if self._models_dir is None:
            self._models_dir = find_models_dir()
        return self._models_dir

    def _get(self, key: str, factory: Callable[[], Any]) -> Any:
        model = self._loaded.get(key)
        if model is None:
            with self._load_lock:
                model = self._loaded.get(key)
                if model is None:
                    model = factory()
                    self._loaded[key] = model
        return model

    def _file(self, weights: WeightsFile) -> str:
        return str(weights_path(self.models_dir, weights, verify=self._verify))

    @property
    def hog(self) -> Any:
        return self._get(HOG_DETECTOR, lambda: _dlib().get_frontal_face_detector())

    @property
    def cnn(self) -> Any:
        return self._get(
            CNN_DETECTOR_FILE.name,
            lambda: _dlib().cnn_face_detection_model_v1(self._file(CNN_DETECTOR_FILE)),
        )

    @property
    def shape_predictor(self) -> Any:
        return self._get(
            SHAPE_PREDICTOR_FILE.name,
            lambda: _dlib().shape_predictor(self._file(SHAPE_PREDICTOR_FILE)),
        )

    @property
    def resnet(self) -> Any:
        return self._get(
            RESNET_FILE.name,
            lambda: _dlib().face_recognition_model_v1(self._file(RESNET_FILE)),
        )

    def load_all(self) -> None:
        """Load (and verify) every model now: about 0.6 s, for a server's start-up."""
        _ = (self.hog, self.cnn, self.shape_predictor, self.resnet)

    # -- typed wrappers: the stages call these, never dlib directly ------------------------

    def run_hog(
        self, pixels: NDArray[np.uint8], *, upsample: int, threshold: float = 0.0
    ) -> list[tuple[FaceBox, float]]:
        """HOG boxes with their SVM margin (0 is dlib's default threshold), in ``pixels``'s
        coordinates."""
        with self._hog_lock:
            rects, scores, _views = self.hog.run(pixels, upsample, threshold)
        return [(_to_box(rect), float(score)) for rect, score in zip(rects, scores, strict=True)]

    def run_cnn(self, pixels: NDArray[np.uint8], *, upsample: int) -> list[tuple[FaceBox, float]]:
        """MMOD CNN boxes with their confidence, in ``pixels``'s coordinates."""
        with self._cnn_lock:
            found = self.cnn(pixels, upsample)
        return [(_to_box(det.rect), float(det.confidence)) for det in found]

    def landmarks(self, pixels: NDArray[np.uint8], box: FaceBox) -> list[Point]:
        """The 5-point shape predictor's points for ``box`` (dlib rounds them to whole pixels)."""
        with self._shape_lock:
            shape = self.shape_predictor(pixels, _rectangle(box))
        return [(float(p.x), float(p.y)) for p in shape.parts()]

    def face_chip(
        self,
        pixels: NDArray[np.uint8],
        box: FaceBox,
        landmarks: Sequence[Point],
        *,
        size: int,
        padding: float,
    ) -> NDArray[np.uint8]:
        """dlib's aligned chip (rotated upright, scaled), exactly as compute_face_descriptor
        cuts it internally; dlib low-pass filters (image pyramid) when it shrinks."""
        dlib = _dlib()
        points = [dlib.point(round(x), round(y)) for x, y in landmarks]
        shape = dlib.full_object_detection(_rectangle(box), points)
        chip = dlib.get_face_chip(pixels, shape, size=size, padding=padding)
        return np.ascontiguousarray(chip, dtype=np.uint8)

    def describe(self, chips: Sequence[NDArray[np.uint8]], *, jitters: int) -> NDArray[np.float64]:
        """ResNet descriptors of 150x150 RGB chips in one batch: shape (n, 128), float64."""
        if not chips:
            return np.zeros((0, MODEL.dimension), dtype=np.float64)
        with self._resnet_lock:
            vectors = self.resnet.compute_face_descriptor(list(chips), jitters)
        return np.array([np.asarray(v, dtype=np.float64) for v in vectors], dtype=np.float64)


def _to_box(rect: Any) -> FaceBox:
    return FaceBox(
        left=int(rect.left()),
        top=int(rect.top()),
        width=int(rect.width()),
        height=int(rect.height()),
    )
