"""An ONNX face recogniser run by ONNX Runtime: align to the model's template, embed in batches.

**Alignment.** The five detector landmarks are mapped onto the model file's five-point
template by the least-squares similarity transform (rotation, uniform scale, translation:
Umeyama 1991, the method OpenCV's ``FaceRecognizerSF.alignCrop`` uses), and the chip is cut
from the full-resolution image with bilinear interpolation (``cv2.warpAffine``). Measured on
the 27 faces in tests/data and ../shared/faces: the chip differs from ``alignCrop``'s by at
most one grey level (mean 0.002), and descriptors by at most 0.003 (tested in
tests/engine/test_onnx_engine.py with bounds of 1 grey level and 0.01).

**The graph.** The verified file is prepared *in memory* before the session is created (the
file on disk is never changed), in three steps, each a no-op on a graph that does not need it
(:mod:`probity.engine.onnx_graph`, which reads the graph without importing the ``onnx``
package):

1. *Stale inputs dropped.* The opencv_zoo int8 SFace file lists 28 stale tensors (the float
   weights the quantiser replaced) as graph inputs that no node reads. OpenCV 5's
   ``FaceRecognizerSF`` rejects the file for that reason, and ONNX Runtime would demand them.
2. *Constant weights folded.* The file is weight-only block-quantised: every Conv reads its
   weights through ``DequantizeLinear → Reshape`` of int8 initialisers, so ONNX Runtime
   dequantised about 9.6 M weights on every run and could not fuse the BatchNormalizations
   into the Convs (their weights are not constants to it). Those constant subgraphs are
   evaluated once with numpy, exactly as ONNX Runtime evaluates them, and replaced by their
   float results. Measured on
   SFace: embedding 1.6× faster (126 → 78 ms a chip on a loaded 2-core machine), outputs
   within 2e-6 of the unfolded graph's, 28 MB more memory per process (the float weights).
3. *Batch dimension made symbolic* where the graph fixes it at 1 (SFace does) and no node
   could depend on it (see :func:`symbolic_batch`); otherwise chips run one at a time.
   Measured on SFace on 2 CPU cores: batches of 4–16 cost the same per chip as batches of 1
   (the convolutions already fill the cores), so batching helps on a GPU, not here.

**Sessions and threads.** One ``InferenceSession`` per model per process, created on first use
under a lock. ONNX Runtime documents ``InferenceSession.run`` as safe to call from several
threads at once, so embedding needs no lock; ``threads`` sets its intra-op thread pool (0: ONNX
Runtime's default, one per core). ``providers`` lists execution providers in order of
preference (``CPUExecutionProvider`` by default; ``CUDAExecutionProvider`` where
onnxruntime-gpu and a GPU exist); an unavailable provider is refused by name rather than
silently replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.engine.onnx_graph import prepare_graph
from probity.engine.specs import ModelSpec
from probity.errors import IntegrityError, InvalidInput

BATCH_SIZE = 32
"""Chips per session run (about 1.6 MB of input for 112 × 112)."""


def similarity_transform(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The 2 × 3 similarity transform that best maps ``source`` points onto ``target`` points
    (both (n, 2)), in the least-squares sense (Umeyama 1991, no reflection)."""
    n = source.shape[0]
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    covariance = centred_t.T @ centred_s / n
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    variance = float((centred_s**2).sum() / n)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    matrix = np.zeros((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_t - scale * rotation @ mean_s
    return matrix


def _onnxruntime() -> Any:
    import onnxruntime

    return onnxruntime


class OnnxRecogniser:
    """The recogniser a :class:`ModelSpec` describes; the session is created on first use."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 0,
    ) -> None:
        self.spec = spec
        self.providers = tuple(providers)
        self.threads = threads
        self._session: Any = None
        self._input_name = ""
        self._lock = threading.Lock()

    # -- the session ------------------------------------------------------------------------

    def _create(self) -> Any:
        ort = _onnxruntime()
        available = set(ort.get_available_providers())
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise InvalidInput(
                f"ONNX Runtime execution provider(s) {', '.join(missing)} not available here "
                f"(available: {', '.join(sorted(available))}); set PROBITY_ENGINE__ONNX_PROVIDERS"
            )
        data = prepare_graph(self.spec.read_verified())
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not news
        # Idle intra-op threads sleep instead of spinning: on a shared CPU (other requests,
        # YuNet, dlib, the database) spinning threads steal the cores the work needs.
        # Measured on 2 busy cores: one SFace chip 150 ms with 2 threads not spinning,
        # 233 ms spinning, 124 ms on one thread.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(data, options, providers=list(self.providers))
        except Exception as exc:  # ONNX Runtime raises its own exception types
            raise IntegrityError(
                f"model {self.spec.key}: ONNX Runtime cannot load {self.spec.resolve_file()}: {exc}"
            ) from exc
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise IntegrityError(
                f"model {self.spec.key} takes {len(inputs)} inputs; a recogniser takes one "
                "image tensor"
            )
        self._input_name = inputs[0].name
        return session

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._create()
        return self._session

    def load(self) -> None:
        """Verify the file and create the session now (about 0.1 s for SFace int8)."""
        _ = self.session

    # -- the stages ---------------------------------------------------------------------------

    def align(
        self, pixels: NDArray[np.uint8], landmarks: Sequence[tuple[float, float]]
    ) -> NDArray[np.uint8]:
        """The model's aligned chip (height, width, 3), RGB uint8, cut from full-res RGB
        ``pixels`` so the five ``landmarks`` land on the model's template."""
        import cv2

        source = np.asarray(landmarks, dtype=np.float64)
        target = np.asarray(self.spec.template, dtype=np.float64)
        matrix = similarity_transform(source, target)
        width, height = self.spec.input_size
        chip = cv2.warpAffine(
            np.ascontiguousarray(pixels),
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        return np.ascontiguousarray(chip, dtype=np.uint8)

    def embed(self, chips: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """L2-normalised descriptors (n, dimension) float32 of RGB chips, in batches."""
        spec = self.spec
        width, height = spec.input_size
        out = np.zeros((len(chips), spec.dimension), dtype=np.float32)
        for index, chip in enumerate(chips):
            if chip.shape != (height, width, 3) or chip.dtype != np.uint8:
                raise ValueError(
                    f"chip {index} is {chip.shape} {chip.dtype}; {spec.key} needs "
                    f"({height}, {width}, 3) uint8"
                )
        mean = np.asarray(spec.mean, dtype=np.float32)
        std = np.asarray(spec.std, dtype=np.float32)
        for start in range(0, len(chips), BATCH_SIZE):
            batch = np.stack(chips[start : start + BATCH_SIZE]).astype(np.float32)
            if spec.channel_order == "BGR":
                batch = batch[..., ::-1]
            batch = (batch - mean) / std
            tensor = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
            vectors = self._run(tensor)
            out[start : start + len(vectors)] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: NDArray[np.float32] = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised

    def _run(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        session = self.session
        # Some exported graphs fix the batch dimension at 1: run those one chip at a time.
        batch_dim = session.get_inputs()[0].shape[0]
        if isinstance(batch_dim, int) and batch_dim == 1 and len(tensor) > 1:
            parts = [session.run(None, {self._input_name: t[None]})[0] for t in tensor]
            result = np.concatenate([np.asarray(p).reshape(1, -1) for p in parts])
        else:
            result = np.asarray(session.run(None, {self._input_name: tensor})[0])
        vectors = result.reshape(len(tensor), -1).astype(np.float32)
        if vectors.shape[1] != self.spec.dimension:
            raise IntegrityError(
                f"model {self.spec.key} gave {vectors.shape[1]}-d output; its model file says "
                f"{self.spec.dimension}"
            )
        return vectors
