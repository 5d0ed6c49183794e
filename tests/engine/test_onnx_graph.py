"""The in-memory preparation of an ONNX recogniser's graph (engine/onnx_recogniser.py):
dropping stale inputs, folding the constant weight subgraphs, a symbolic batch. Each step
must leave the model's output as it was."""

from __future__ import annotations

from typing import Any

import numpy as np

from probity.engine.onnx_graph import (
    fold_constant_weights,
    prepare_graph,
    strip_stale_inputs,
    symbolic_batch,
)
from probity.engine.specs import bundled_specs
from tests.engine.tiny_model import tiny_onnx


def session(data: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def sface_bytes() -> bytes:
    return next(s for s in bundled_specs() if s.name == "sface-int8").read_verified()


def test_folded_sface_gives_the_unfolded_output() -> None:
    import onnx

    stripped = strip_stale_inputs(sface_bytes())
    folded = fold_constant_weights(stripped)
    ops = {node.op_type for node in onnx.load_model_from_string(folded).graph.node}
    assert "DequantizeLinear" not in ops and "Reshape" not in ops
    chips = np.random.default_rng(3).random((2, 3, 112, 112), dtype=np.float32) * 255
    before, after = session(stripped), session(folded)
    name = before.get_inputs()[0].name
    for chip in chips:
        a = np.asarray(before.run(None, {name: chip[None]})[0])
        b = np.asarray(after.run(None, {name: chip[None]})[0])
        assert np.abs(a - b).max() < 1e-4 * max(1.0, float(np.abs(a).max()))


def test_sface_runs_batches_once_prepared() -> None:
    prepared = session(prepare_graph(sface_bytes()))
    assert prepared.get_inputs()[0].shape[0] == "batch"
    chips = np.random.default_rng(4).random((3, 3, 112, 112), dtype=np.float32) * 255
    name = prepared.get_inputs()[0].name
    together = np.asarray(prepared.run(None, {name: chips})[0])
    alone = np.concatenate([np.asarray(prepared.run(None, {name: c[None]})[0]) for c in chips])
    assert together.shape == (3, 128)
    assert np.allclose(together, alone, atol=1e-5)


def test_a_graph_without_quantised_weights_is_left_as_it_is() -> None:
    data = tiny_onnx()
    assert fold_constant_weights(data) == data
    assert symbolic_batch(data) == data  # its batch is symbolic already


def test_a_fixed_batch_with_a_reshape_stays_fixed() -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["data", "shape"], ["out"])],
        "fixed",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 48])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = bytes(model.SerializeToString())
    assert symbolic_batch(data) == data
    assert onnx.load_model_from_string(data).graph.input[0].name == "data"


def test_preparing_and_running_sface_does_not_import_the_onnx_package() -> None:
    """The onnx package's import pulls in ml_dtypes (1.6-2.8 s here): a search must not pay it."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from probity.config import EngineSettings\n"
        "from probity.engine.registry import build_engine_set\n"
        "engine = build_engine_set(EngineSettings()).default\n"
        "engine.warm_up()\n"
        "assert engine.recogniser.session.get_inputs()[0].shape[0] == 'batch'\n"
        "assert 'onnx' not in sys.modules, 'onnx imported'\n"
        "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
