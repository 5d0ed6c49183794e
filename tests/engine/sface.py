"""The default engine (YuNet + SFace on ONNX Runtime) for the engine tests, built once."""

from __future__ import annotations

from functools import cache

from probity.config import EngineSettings
from probity.engine.onnx_engine import OnnxEngine
from probity.engine.registry import build_engine_set


@cache
def default_engine() -> OnnxEngine:
    """The default engine of a fresh install; its sessions load on first use."""
    engine = build_engine_set(EngineSettings()).default
    assert isinstance(engine, OnnxEngine)
    return engine
