"""An ONNX face recogniser run by ONNX Runtime: align to the model's template, embed in batches.

**Alignment.** The five detector landmarks are mapped onto the model file's five-point
template by the least-squares similarity transform (rotation, uniform scale, translation:
Umeyama 1991, the method OpenCV's ``FaceRecognizerSF.alignCrop`` uses), and the chip is cut
from the full-resolution image with bilinear interpolation (``cv2.warpAffine``). Measured on
every face in tests/data and ../shared/faces: the chip differs from ``alignCrop``'s by at most
one grey level, and descriptors by less than 0.01.

**The graph.** The verified file is prepared *in memory* before the session is created (the
file on disk is never changed), in three steps, each a no-op on a graph that does not need it:

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


def strip_stale_inputs(model_bytes: bytes) -> bytes:
    """The model with graph inputs that no node reads, or that are initialisers, removed
    (serialised again); the bytes unchanged when there are none."""
    import onnx

    model = onnx.load_model_from_string(model_bytes)
    graph = model.graph
    initialisers = {tensor.name for tensor in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    read |= {output.name for output in graph.output}
    keep = [i for i in graph.input if i.name not in initialisers and i.name in read]
    if len(keep) == len(graph.input):
        return model_bytes
    del graph.input[:]
    graph.input.extend(keep)
    return bytes(model.SerializeToString())


def fold_constant_weights(model_bytes: bytes) -> bytes:
    """The model with every ``DequantizeLinear``, ``Reshape`` and ``Constant`` node whose
    inputs are all constants replaced by its value (an initialiser), computed once with
    numpy exactly as ONNX Runtime computes it (``(q - zero_point) * scale`` in float32,
    per tensor, per axis or per block); the bytes unchanged when there is nothing to fold."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_model_from_string(model_bytes)
    graph = model.graph
    values: dict[str, NDArray[Any]] = {
        tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer
    }
    initial = set(values)
    kept = []
    for node in graph.node:  # ONNX graphs are stored in topological order
        inputs = [name for name in node.input if name]
        result = None
        if node.op_type in _FOLDERS and all(name in values for name in inputs):
            result = _FOLDERS[node.op_type](node, [values[name] for name in inputs])
        if result is None:
            kept.append(node)
        else:
            values[node.output[0]] = result
    if len(kept) == len(graph.node):
        return model_bytes
    read = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    still = [tensor for tensor in graph.initializer if tensor.name in read]
    made = [
        numpy_helper.from_array(np.array(value, order="C"), name)
        for name, value in values.items()
        if name not in initial and name in read
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(still + made)
    return bytes(model.SerializeToString())


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _dequantize(node: Any, args: list[NDArray[Any]]) -> NDArray[np.float32] | None:
    quantised, scale = args[0], args[1].astype(np.float32)
    zero = args[2] if len(args) > 2 else np.zeros_like(scale, dtype=np.int32)
    if quantised.dtype not in (np.int8, np.uint8, np.int32):
        return None  # float8 / int4 types: left to ONNX Runtime
    axis = int(_attribute(node, "axis", 1)) % max(quantised.ndim, 1)
    block = int(_attribute(node, "block_size", 0))
    if scale.ndim == 0 or scale.size == 1:
        shaped_scale, shaped_zero = scale.reshape(()), zero.reshape(())
    else:
        shape = [1] * quantised.ndim
        if block:
            scale = np.repeat(scale, block, axis=axis).take(range(quantised.shape[axis]), axis=axis)
            zero = np.repeat(zero, block, axis=axis).take(range(quantised.shape[axis]), axis=axis)
            shaped_scale, shaped_zero = scale, zero
        else:
            shape[axis] = quantised.shape[axis]
            shaped_scale, shaped_zero = scale.reshape(shape), zero.reshape(shape)
    centred = (quantised.astype(np.int32) - shaped_zero.astype(np.int32)).astype(np.float32)
    return np.asarray(centred * shaped_scale, dtype=np.float32)


def _reshape(node: Any, args: list[NDArray[Any]]) -> NDArray[Any] | None:
    data, shape = args[0], [int(v) for v in args[1].reshape(-1)]
    if not _attribute(node, "allowzero", 0):
        shape = [data.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return data.reshape(shape)


def _constant(node: Any, args: list[NDArray[Any]]) -> NDArray[Any] | None:
    from onnx import numpy_helper

    value = _attribute(node, "value", None)
    return None if value is None else numpy_helper.to_array(value)


_FOLDERS = {"DequantizeLinear": _dequantize, "Reshape": _reshape, "Constant": _constant}


SHAPE_OPS = frozenset({"Reshape", "Expand", "Tile", "Slice", "Split", "Shape", "Squeeze"})
"""Operators that could tie a graph to its batch size; a graph using one keeps a fixed batch."""


def symbolic_batch(model_bytes: bytes) -> bytes:
    """The model with a batch dimension fixed at 1 made symbolic, when no node could depend on
    the batch size (none of :data:`SHAPE_OPS`; SFace, once folded, has only ``Flatten`` with
    axis 1 before its ``Gemm``); the bytes unchanged otherwise."""
    import onnx

    model = onnx.load_model_from_string(model_bytes)
    graph = model.graph
    if len(graph.input) != 1 or any(node.op_type in SHAPE_OPS for node in graph.node):
        return model_bytes
    if any(node.op_type == "Flatten" and _attribute(node, "axis", 1) != 1 for node in graph.node):
        return model_bytes
    shapes = [graph.input[0].type.tensor_type.shape] + [
        output.type.tensor_type.shape for output in graph.output
    ]
    if not shapes[0].dim or shapes[0].dim[0].dim_value != 1:
        return model_bytes
    for shape in shapes:
        if shape.dim and shape.dim[0].dim_value == 1:
            shape.dim[0].dim_param = "batch"  # clears dim_value (a oneof)
    del graph.value_info[:]  # inferred shapes with the old batch, if the file carried any
    return bytes(model.SerializeToString())


def prepare_graph(model_bytes: bytes) -> bytes:
    """The verified file's graph as the session runs it (see the module docstring)."""
    return symbolic_batch(fold_constant_weights(strip_stale_inputs(model_bytes)))


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
