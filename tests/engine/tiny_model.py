"""A tiny ONNX recogniser built in the test, written with its model file (TOML) where an
operator would put their own: the operator path, exercised without anyone's weights.

The graph: the 112 × 112 chip → Conv 8 × 8, stride 8 (3 → 4 channels, 14 × 14) → Flatten
→ Gemm to ``dimension`` outputs, with fixed pseudo-random weights (seeded). It is no face
recogniser, but a fixed projection: the same chip always gives the same vector, different
chips different vectors, which is what registration, enrolment and search need to be tested.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SFACE_TEMPLATE = (
    "[[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], "
    "[41.5493, 92.3655], [70.7299, 92.2041]]"
)


def tiny_onnx(*, dimension: int = 64, seed: int = 7, batch: str | int = "n") -> bytes:
    """The serialised tiny recogniser: input ``data`` (batch, 3, 112, 112), output ``fc1``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.02, (4, 3, 8, 8)).astype(np.float32)
    gemm_w = rng.normal(0, 0.05, (4 * 14 * 14, dimension)).astype(np.float32)
    gemm_b = np.zeros(dimension, dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["data", "conv_w"], ["conv"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["conv"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "gemm_w", "gemm_b"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-recogniser",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch, dimension])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(gemm_w, "gemm_w"),
            numpy_helper.from_array(gemm_b, "gemm_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def model_file_text(
    *,
    onnx_name: str,
    sha256: str,
    dimension: int = 64,
    name: str = "tiny-projection",
    version: str = "test-1",
    drop: str | None = None,
) -> str:
    """A model file for the tiny recogniser; ``drop`` leaves out the line starting with it."""
    lines = [
        f'name = "{name}"',
        f'version = "{version}"',
        f'file = "{onnx_name}"',
        f'sha256 = "{sha256}"',
        'licence = "CC0 (made in the test)"',
        'source = "built by tests/engine/tiny_model.py"',
        'training_data = "none: fixed pseudo-random weights"',
        "[input]",
        "size = [112, 112]",
        'channel_order = "RGB"',
        "mean = [127.5, 127.5, 127.5]",
        "std = [128.0, 128.0, 128.0]",
        "[alignment]",
        f"template = {SFACE_TEMPLATE}",
        "[output]",
        f"dimension = {dimension}",
        'distance = "euclidean_unit"',
        "[[fmr_table]]",
        "fmr = 1e-3",
        "distance = 0.5",
        "[measured]",
        'source = "not measured: a test model"',
    ]
    return "\n".join(line for line in lines if drop is None or not line.startswith(drop)) + "\n"


def install_tiny_model(
    folder: Path, *, dimension: int = 64, declared_dimension: int | None = None, **fields: str
) -> Path:
    """Write ``tiny.onnx`` and ``tiny.toml`` into ``folder``; the TOML file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = tiny_onnx(dimension=dimension)
    (folder / "tiny.onnx").write_bytes(data)
    sha = fields.pop("sha256", hashlib.sha256(data).hexdigest())
    text = model_file_text(
        onnx_name="tiny.onnx",
        sha256=sha,
        dimension=declared_dimension or dimension,
        **fields,
    )
    path = folder / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path
