"""An ONNX recogniser's graph as the session runs it, prepared in memory from the verified file.

See :mod:`probity.engine.onnx_recogniser` for the three steps and what they measured. The
graph is read and written with ONNX's own protobuf classes (``onnx/onnx_ml_pb2.py``), loaded
*without* importing the ``onnx`` package: its import pulls in ``ml_dtypes``, which took
1.6–2.8 s on the 2-core machine these figures come from, on every process start (every
``probity search``). Tensors are converted with the few lines below (raw little-endian data or
the typed fields, the layout onnx.proto defines); a tensor this code does not understand
(external data, float8, int4) is simply not folded.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from probity.errors import IntegrityError

_DTYPES: dict[int, Any] = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    12: np.uint32,
    13: np.uint64,
}
"""TensorProto.DataType codes (onnx.proto) of the element types folded here."""
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@cache
def _proto() -> Any:
    """The module of ONNX's protobuf classes (``ModelProto``, ``TensorProto``…)."""
    loaded = sys.modules.get("onnx.onnx_ml_pb2")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("onnx")
    if spec is None or not spec.submodule_search_locations:
        raise IntegrityError("the package 'onnx' is not installed (reinstall: scripts/bootstrap)")
    path = Path(next(iter(spec.submodule_search_locations))) / "onnx_ml_pb2.py"
    module_spec = importlib.util.spec_from_file_location("probity_onnx_ml_pb2", path)
    if module_spec is None or module_spec.loader is None:
        raise IntegrityError(f"cannot load ONNX's protobuf classes from {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _load(model_bytes: bytes) -> Any:
    model = _proto().ModelProto()
    model.ParseFromString(model_bytes)
    return model


def to_array(tensor: Any) -> NDArray[Any] | None:
    """A TensorProto's value as a numpy array; None for a layout not handled here."""
    dtype = _DTYPES.get(int(tensor.data_type))
    if dtype is None or tensor.data_location == _EXTERNAL:
        return None
    shape = tuple(int(d) for d in tensor.dims)
    if tensor.raw_data:
        flat = np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<"))
        return flat.reshape(shape)  # a read-only view: folding never writes into it
    if dtype is np.float32:
        values: Any = tensor.float_data
    elif dtype is np.float64:
        values = tensor.double_data
    elif dtype is np.int64:
        values = tensor.int64_data
    elif dtype in (np.uint32, np.uint64):
        values = tensor.uint64_data
    elif dtype is np.float16:
        return np.asarray(tensor.int32_data, dtype=np.uint16).view(np.float16).reshape(shape)
    else:
        values = tensor.int32_data
    return np.asarray(values, dtype=dtype).reshape(shape)


def from_array(array: NDArray[Any], name: str) -> Any:
    """A TensorProto named ``name`` holding ``array`` (raw little-endian data)."""
    tensor = _proto().TensorProto()
    tensor.name = name
    tensor.data_type = _CODES[array.dtype]
    tensor.dims.extend(int(d) for d in array.shape)
    tensor.raw_data = np.asarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return tensor


def strip_stale_inputs(model_bytes: bytes) -> bytes:
    """The model with graph inputs that no node reads, or that are initialisers, removed
    (serialised again); the bytes unchanged when there are none."""
    return _apply(model_bytes, _strip)


def fold_constant_weights(model_bytes: bytes) -> bytes:
    """The model with every ``DequantizeLinear``, ``Reshape`` and ``Constant`` node whose
    inputs are all constants replaced by its value (an initialiser), computed once with
    numpy exactly as ONNX Runtime computes it (``(q - zero_point) * scale`` in float32,
    per tensor, per axis or per block); the bytes unchanged when there is nothing to fold."""
    return _apply(model_bytes, _fold)


def symbolic_batch(model_bytes: bytes) -> bytes:
    """The model with a batch dimension fixed at 1 made symbolic, when no node could depend on
    the batch size (none of :data:`SHAPE_OPS`; SFace, once folded, has only ``Flatten`` with
    axis 1 before its ``Gemm``); the bytes unchanged otherwise."""
    return _apply(model_bytes, _symbolic)


def prepare_graph(model_bytes: bytes) -> bytes:
    """The verified file's graph as the session runs it (see the module docstring): parsed
    once, the three steps applied, serialised once (about 0.1 s for SFace on an idle core)."""
    return _apply(model_bytes, _strip, _fold, _symbolic)


def _apply(model_bytes: bytes, *steps: Any) -> bytes:
    model = _load(model_bytes)
    changed = [step(model) for step in steps]
    return bytes(model.SerializeToString()) if any(changed) else model_bytes


def _strip(model: Any) -> bool:
    graph = model.graph
    initialisers = {tensor.name for tensor in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    read |= {output.name for output in graph.output}
    keep = [i for i in graph.input if i.name not in initialisers and i.name in read]
    if len(keep) == len(graph.input):
        return False
    del graph.input[:]
    graph.input.extend(keep)
    return True


def _fold(model: Any) -> bool:
    graph = model.graph
    values: dict[str, NDArray[Any]] = {}
    for tensor in graph.initializer:
        array = to_array(tensor)
        if array is not None:
            values[tensor.name] = array
    initial = {tensor.name for tensor in graph.initializer}
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
        return False
    read = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    still = [tensor for tensor in graph.initializer if tensor.name in read]
    made = [
        from_array(np.array(value, order="C"), name)
        for name, value in values.items()
        if name not in initial and name in read
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(still + made)
    return True


def _attribute(node: Any, name: str, default: Any) -> Any:
    """A node attribute's value (AttributeProto types FLOAT, INT, STRING, TENSOR, INTS)."""
    for attribute in node.attribute:
        if attribute.name == name:
            kinds = {1: "f", 2: "i", 3: "s", 4: "t", 7: "ints"}
            field = kinds.get(int(attribute.type))
            if field is None:
                return default
            value = getattr(attribute, field)
            return list(value) if field == "ints" else value
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
    # int8 / uint8 values and zero points are exact in float32, so this is ONNX Runtime's
    # (q - zero_point) * scale to the bit, in one pass fewer than going through int32.
    if quantised.dtype == np.int32:  # large values: subtract exactly, then convert
        centred = (quantised.astype(np.int64) - shaped_zero.astype(np.int64)).astype(np.float32)
    else:
        centred = quantised.astype(np.float32) - shaped_zero.astype(np.float32)
    return np.asarray(centred * shaped_scale, dtype=np.float32)


def _reshape(node: Any, args: list[NDArray[Any]]) -> NDArray[Any] | None:
    data, shape = args[0], [int(v) for v in args[1].reshape(-1)]
    if not _attribute(node, "allowzero", 0):
        shape = [data.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return data.reshape(shape)


def _constant(node: Any, args: list[NDArray[Any]]) -> NDArray[Any] | None:
    value = _attribute(node, "value", None)
    return None if value is None else to_array(value)


_FOLDERS = {"DequantizeLinear": _dequantize, "Reshape": _reshape, "Constant": _constant}


SHAPE_OPS = frozenset({"Reshape", "Expand", "Tile", "Slice", "Split", "Shape", "Squeeze"})
"""Operators that could tie a graph to its batch size; a graph using one keeps a fixed batch."""


def _symbolic(model: Any) -> bool:
    graph = model.graph
    if len(graph.input) != 1 or any(node.op_type in SHAPE_OPS for node in graph.node):
        return False
    if any(node.op_type == "Flatten" and _attribute(node, "axis", 1) != 1 for node in graph.node):
        return False
    shapes = [graph.input[0].type.tensor_type.shape] + [
        output.type.tensor_type.shape for output in graph.output
    ]
    if not shapes[0].dim or shapes[0].dim[0].dim_value != 1:
        return False
    for shape in shapes:
        if shape.dim and shape.dim[0].dim_value == 1:
            shape.dim[0].dim_param = "batch"  # clears dim_value (a oneof)
    del graph.value_info[:]  # inferred shapes with the old batch, if the file carried any
    return True
