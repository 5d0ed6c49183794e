"""The installed face models and their engines: one :class:`EngineSet` per process.

A gallery holds templates of one model (its ``ModelVersion``); the services ask the engine set
for the engine of that model. The set holds:

- **dlib-resnet-v1** (``DlibEngine``): the engine of galleries created before the ONNX engine;
  kept so they work untouched until migrated.
- **every ONNX recogniser described by a model file** (``OnnxEngine``): the bundled SFace
  (``engine/model_specs/sface-int8.toml``) and any operator model in ``<home>/models`` or
  ``PROBITY_ENGINE__MODEL_DIRS``. They share one YuNet detector and one set of dlib models.

``default`` is the engine new galleries get (``PROBITY_ENGINE__DEFAULT_MODEL``, SFace unless
set). Building the set reads the small TOML files only; weights are verified and loaded when a
model is first used.

FMR tables: a deployment's own table (``probity calibrate``, ``<home>/calibration``, see
``engine/calibration_file.py``) when it has one for the model, the model's shipped table
otherwise. The calibration file is re-read when it changes, so a running server picks up a
new calibration or a reset without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from probity.config import EngineSettings
from probity.domain.faces import ModelVersion
from probity.engine.calibration_file import calibration_path, deployment_table, read_document
from probity.engine.dlib_engine import DlibEngine
from probity.engine.models import MODEL as DLIB_MODEL
from probity.engine.models import DlibModels
from probity.engine.onnx_engine import OnnxEngine
from probity.engine.onnx_recogniser import OnnxRecogniser
from probity.engine.specs import ModelSpec, bundled_specs, operator_specs
from probity.engine.thresholds import TABLES, FmrTable, OperatingPoint
from probity.engine.types import FaceEngine
from probity.engine.yunet import YuNetDetector
from probity.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A model as ``probity models`` lists it: its identity, where it comes from, its card."""

    model: ModelVersion
    licence: str
    source: str
    sha256: str
    training_data: str
    distance: str
    table_source: str
    origin: str  # "bundled", "operator: <path>" or "dlib"
    spec: ModelSpec | None = None


DLIB_CARD = InstalledModel(
    model=DLIB_MODEL,
    licence="CC0 (weights, Davis King); dlib Boost Software Licence",
    source="dlib 19/20 ResNet v1, 5-point shape predictor, HOG and MMOD-CNN detectors; "
    "weights from the PyPI package face_recognition_models 0.3.0",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    training_data="about 3 million faces of 7,485 people from the face scrub and VGG data sets "
    "and pages scraped from the internet, as dlib's author describes it (dlib.net, 2017)",
    distance="euclidean",
    table_source="LFW pairs, bare dlib pipeline (engine/thresholds.py)",
    origin="dlib",
)


class EngineSet:
    """Engines by model key; ``default`` for new galleries. Safe to share between threads."""

    def __init__(
        self,
        engines: Mapping[str, FaceEngine],
        *,
        default: str,
        cards: Mapping[str, InstalledModel] | None = None,
        calibration_dir: Path | None = None,
    ) -> None:
        if default not in engines:
            raise InvalidInput(f"the default model {default} is not among the installed models")
        self._engines = dict(engines)
        self._default = default
        self._cards = dict(cards or {})
        self.calibration_dir = calibration_dir
        self._deployment: dict[str, tuple[tuple[int, int], FmrTable]] = {}
        self._lock = threading.Lock()

    @classmethod
    def single(cls, engine: FaceEngine) -> EngineSet:
        """A set of one engine (tests with a fake engine; a caller that passes its own)."""
        return cls({engine.model.key: engine}, default=engine.model.key)

    @property
    def default(self) -> FaceEngine:
        return self._engines[self._default]

    def __iter__(self) -> Iterator[FaceEngine]:
        return iter(self._engines.values())

    def __len__(self) -> int:
        return len(self._engines)

    def keys(self) -> list[str]:
        return list(self._engines)

    def has(self, key: str) -> bool:
        return key in self._engines

    def get(self, key: str) -> FaceEngine:
        """The engine of model ``key`` (name@version); InvalidInput naming the installed ones."""
        engine = self._engines.get(key)
        if engine is None:
            raise InvalidInput(
                f"model {key} is not installed here (installed: {', '.join(self._engines)}); "
                "install its model file or migrate the gallery"
            )
        return engine

    def for_model(self, model: ModelVersion) -> FaceEngine:
        return self.get(model.key)

    def resolve(self, name_or_key: str) -> FaceEngine:
        """The engine named ``name_or_key``: a full key, or a model name if only one version
        of it is installed."""
        if name_or_key in self._engines:
            return self._engines[name_or_key]
        matches = [e for e in self._engines.values() if e.model.name == name_or_key]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidInput(
                f"several versions of {name_or_key} are installed: name one of "
                f"{', '.join(e.model.key for e in matches)}"
            )
        names = ", ".join(sorted({e.model.name for e in self._engines.values()}))
        raise InvalidInput(f"unknown model '{name_or_key}' (installed: {names})")

    def table(self, model: ModelVersion) -> FmrTable:
        """The FMR table and distance scale of ``model``: the deployment's own calibration
        when there is one (``origin="deployment"``), else the shipped table (from its model
        file for ONNX models, compiled in for dlib; InvalidInput when neither exists)."""
        shipped = self.shipped_table(model)
        if self.calibration_dir is None:
            return shipped
        path = calibration_path(self.calibration_dir, model.key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return shipped
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._deployment.get(model.key)
            if known is not None and known[0] == stamp:
                return known[1]
        document = read_document(path)
        if document is None:
            return shipped
        table = deployment_table(shipped, document)
        with self._lock:
            self._deployment[model.key] = (stamp, table)
        return table

    def shipped_table(self, model: ModelVersion) -> FmrTable:
        """The table the model comes with, whatever the deployment measured."""
        card = self._cards.get(model.key)
        if card is not None and card.spec is not None:
            spec = card.spec
            return FmrTable(
                model_name=spec.name,
                points=tuple(OperatingPoint(p.distance, p.fmr, p.fnmr) for p in spec.fmr_table),
                source=f"{spec.table_source} ({spec.spec_path.name})",
                distance=spec.distance,
            )
        table = TABLES.get(model.name)
        if table is None:
            raise InvalidInput(f"no FMR table for model {model.key}")
        return table

    def cards(self) -> list[InstalledModel]:
        """Every installed model's card, the default first."""
        keys = [self._default] + [k for k in self._engines if k != self._default]
        return [self._cards[k] for k in keys if k in self._cards]


def build_engine_set(
    settings: EngineSettings,
    *,
    home_models: Path | None = None,
    calibration_dir: Path | None = None,
) -> EngineSet:
    """The dlib engine and every ONNX model file (bundled, then operator folders). An operator
    file that reuses a bundled model's key is refused (a key must name one file).
    ``calibration_dir``: where the deployment's own FMR tables are (``Settings.calibration_dir``);
    None uses the shipped tables only."""
    dlib_models = DlibModels()
    engines: dict[str, FaceEngine] = {DLIB_MODEL.key: DlibEngine(settings, models=dlib_models)}
    cards: dict[str, InstalledModel] = {DLIB_MODEL.key: DLIB_CARD}
    detector = YuNetDetector(max_side=settings.yunet_max_side)
    folders = ([home_models] if home_models is not None else []) + list(settings.model_dirs)
    for origin, spec in _all_specs(folders):
        if spec.key in engines:
            raise InvalidInput(
                f"model file {spec.spec_path} describes {spec.key}, which is already installed "
                "(give it another name or version)"
            )
        recogniser = OnnxRecogniser(
            spec, providers=settings.onnx_providers, threads=settings.onnx_threads
        )
        engines[spec.key] = OnnxEngine(
            recogniser,
            detector,
            dlib_models=dlib_models,
            cnn_max_side=settings.cnn_max_side,
            detect_max_side=settings.detect_max_side,
        )
        cards[spec.key] = InstalledModel(
            model=spec.model,
            licence=spec.licence,
            source=spec.source,
            sha256=spec.sha256,
            training_data=spec.training_data,
            distance=spec.distance,
            table_source=spec.table_source,
            origin=origin,
            spec=spec,
        )
    default = _default_key(settings.default_model, engines)
    return EngineSet(engines, default=default, cards=cards, calibration_dir=calibration_dir)


def _all_specs(folders: Iterable[Path]) -> Iterator[tuple[str, ModelSpec]]:
    for spec in bundled_specs():
        yield "bundled", spec
    for spec in operator_specs(folders):
        yield f"operator: {spec.spec_path}", spec


def _default_key(wanted: str, engines: Mapping[str, FaceEngine]) -> str:
    if wanted in engines:
        return wanted
    matches = [k for k, e in engines.items() if e.model.name == wanted]
    if len(matches) != 1:
        raise InvalidInput(
            f"PROBITY_ENGINE__DEFAULT_MODEL={wanted} names no single installed model "
            f"(installed: {', '.join(engines)})"
        )
    return matches[0]


def spec_of(engines: EngineSet, key: str) -> ModelSpec | None:
    """The model file behind ``key`` (None for dlib and for engines without one)."""
    for card in engines.cards():
        if card.model.key == key:
            return card.spec
    return None
