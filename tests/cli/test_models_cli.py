"""``probity models``: the installed models and their cards, the default first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.engine.tiny_model import install_tiny_model

FIELDS = {
    "key",
    "licence",
    "source",
    "sha256",
    "dimension",
    "distance",
    "training_data",
    "measured",
    "default",
    "fmr_table",
    "fmr_table_source",
    "origin",
}


def test_models_json_lists_sface_as_default_then_dlib(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("models", "--home", str(tmp_path / "home"), "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    keys = [m["key"] for m in data["models"]]
    assert keys == [
        "sface-int8@opencv_zoo-2021dec-int8bq",
        "dlib-resnet-v1@face_recognition_models-0.3.0",
    ]
    sface, dlib = data["models"]
    assert all(set(m) >= FIELDS for m in data["models"])
    assert sface["default"] is True and dlib["default"] is False
    assert sface["sha256"] == "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    assert sface["dimension"] == 128 and sface["distance"] == "euclidean_unit"
    assert sface["licence"].startswith("Apache-2.0") and sface["origin"] == "bundled"
    assert "MobileFaceNet" in sface["training_data"]
    assert sface["measured"]["pairs_accuracy"] == 0.9903
    assert {"fmr": 1e-3, "distance": 1.128, "fnmr": 0.0097} in sface["fmr_table"]
    assert "sface-int8.toml" in sface["fmr_table_source"]
    assert dlib["distance"] == "euclidean" and dlib["fmr_table"]
    assert data["detector"]["sha256"].startswith("49f000ec")


def test_models_lists_an_operator_model_from_the_home(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    toml = install_tiny_model(home / "models")
    run = probity("models", "--home", str(home), "--json", "--verify")
    assert run.code == 0, run.err
    tiny = next(m for m in json.loads(run.out)["models"] if m["name"] == "tiny-projection")
    assert tiny["origin"] == f"operator: {toml}"
    assert tiny["verified"] is True and tiny["dimension"] == 64 and tiny["default"] is False
    assert (
        tiny["sha256"] == hashlib.sha256((home / "models" / "tiny.onnx").read_bytes()).hexdigest()
    )


def test_models_human_output_marks_the_default(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = probity("models", "--home", str(tmp_path / "home"))
    assert run.code == 0, run.err
    assert "sface-int8@opencv_zoo-2021dec-int8bq  (default for new galleries)" in run.out
    assert "dlib-resnet-v1@face_recognition_models-0.3.0" in run.out
    assert "FMR 0.001 at 1.128" in run.out


def test_models_verify_refuses_an_altered_file(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    install_tiny_model(home / "models")
    onnx_file = home / "models" / "tiny.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-10] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    run = probity("models", "--home", str(home), "--verify")
    assert run.code != 0
    assert "error[" in run.err and str(onnx_file) in run.err
    assert hashlib.sha256(bytes(data)).hexdigest() in run.err


def test_a_bad_model_file_is_one_clear_error(probity, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    toml = install_tiny_model(home / "models", drop="dimension")
    run = probity("models", "--home", str(home))
    assert run.code != 0
    assert f"model file {toml}: missing field 'dimension'" in run.err
    assert "Traceback" not in run.err
