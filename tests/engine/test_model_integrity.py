"""Model files are refused when altered, and nothing in the engine reaches the network.

A template made with another file would not be comparable with the gallery's, so a model file
whose sha256 differs from the digest its model file (or Probity, for YuNet) publishes is
refused before it is loaded, with an IntegrityError naming the file and both digests."""

from __future__ import annotations

import hashlib
import shutil
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from probity.config import EngineSettings
from probity.engine.images import read_image_file
from probity.engine.onnx_engine import OnnxEngine
from probity.engine.registry import build_engine_set
from probity.engine.specs import bundled_specs
from probity.engine.yunet import YUNET_SHA256, YuNetDetector, yunet_path
from probity.errors import IntegrityError


def sface_copy_model_file(folder: Path, *, flip_at: int | None) -> tuple[Path, Path]:
    """Copy the bundled SFace file into ``folder`` (one byte inverted at ``flip_at``) and
    describe it with an operator model file carrying the bundled digest; (toml, onnx)."""
    spec = next(s for s in bundled_specs() if s.name == "sface-int8")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "sface-copy.onnx"
    shutil.copyfile(spec.resolve_file(), target)
    if flip_at is not None:
        data = bytearray(target.read_bytes())
        data[flip_at] ^= 0xFF
        target.write_bytes(bytes(data))
    text = spec.spec_path.read_text("utf-8")
    text = text.replace(f'name = "{spec.name}"', 'name = "sface-copy"')
    text = text.replace(f'version = "{spec.version}"', 'version = "local-1"')
    text = text.replace(f'file = "{spec.file}"', 'file = "sface-copy.onnx"')
    toml = folder / "sface-copy.toml"
    toml.write_text(text, encoding="utf-8")
    return toml, target


def test_sface_with_one_byte_changed_is_refused(tmp_path: Path) -> None:
    _, onnx_file = sface_copy_model_file(tmp_path / "models", flip_at=50_000)
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").get(
        "sface-copy@local-1"
    )
    assert isinstance(engine, OnnxEngine)
    with pytest.raises(IntegrityError) as info:
        engine.recogniser.load()
    message = info.value.message
    expected = engine.recogniser.spec.sha256
    actual = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert actual != expected
    assert str(onnx_file) in message
    assert f"sha256 {actual}" in message and f"expected {expected}" in message
    assert "refusing to load it" in message


def test_yunet_with_one_byte_changed_is_refused(tmp_path: Path) -> None:
    data = bytearray(yunet_path().read_bytes())
    data[len(data) // 2] ^= 0x01
    altered = tmp_path / "yunet.onnx"
    altered.write_bytes(bytes(data))
    detector = YuNetDetector(path=altered)
    with pytest.raises(IntegrityError) as info:
        detector.load()
    message = info.value.message
    assert str(altered) in message and YUNET_SHA256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message


def test_a_missing_model_file_is_an_integrity_error(tmp_path: Path) -> None:
    toml, onnx_file = sface_copy_model_file(tmp_path / "models", flip_at=None)
    onnx_file.unlink()
    engine = build_engine_set(EngineSettings(), home_models=tmp_path / "models").get(
        "sface-copy@local-1"
    )
    assert isinstance(engine, OnnxEngine)
    with pytest.raises(IntegrityError, match="cannot read"):
        engine.recogniser.load()
    assert toml.exists()


def test_the_bundled_files_match_their_published_digests() -> None:
    spec = next(s for s in bundled_specs() if s.name == "sface-int8")
    assert spec.sha256 == "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    assert hashlib.sha256(spec.resolve_file().read_bytes()).hexdigest() == spec.sha256
    assert hashlib.sha256(yunet_path().read_bytes()).hexdigest() == YUNET_SHA256


def test_no_code_path_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    """A fresh engine set verifies and loads every model (YuNet, SFace, dlib's detectors and
    ResNet) and analyses photos in every detector mode with the network functions patched to
    raise: nothing is fetched, at load or at use."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"network use: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)

    from probity.domain.faces import DetectorMode

    engines = build_engine_set(EngineSettings(), home_models=tmp_path / "models")
    image = read_image_file(data_dir / "obama.jpg", max_bytes=10**8, max_pixels=10**8)
    for engine in engines:
        assert len(engine.analyse(image)) == 1, engine.model.key
    default = engines.default
    assert isinstance(default, OnnxEngine)
    assert len(default.analyse(image, DetectorMode.HOG)) == 1
    assert attempts == []
