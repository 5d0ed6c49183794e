"""A deployment's own FMR table: ``<home>/calibration/<model name>@<version>.json``.

``probity calibrate DATASET --model KEY`` measures the all-pairs FMR table of ``probity
evaluate`` on labelled data the deployment holds and writes it here (through
``services/calibration.py``, which audits it); ``EngineSet.table`` then prefers it to the
model's shipped table. The file holds the measured points only (never a point the pair counts
could not resolve), the pair counts, the dataset's folder name, the date and the sha256 of the
descriptor set it came from. ``probity calibrate --reset`` removes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probity.engine.thresholds import FmrTable, OperatingPoint
from probity.errors import IntegrityError

FORMAT = "probity-calibration-1"
MIN_POINTS = 2
"""A table needs two points: thresholds are interpolated between points and never invented
outside them, and ``fmr_at`` needs two to rank across models."""


def calibration_path(folder: Path, model_key: str) -> Path:
    return folder / f"{model_key.replace('/', '_')}.json"


def source_text(document: dict[str, Any]) -> str:
    return (
        f"deployment calibration {document['dataset']}, {document['date']}, "
        f"{document['genuine_pairs']:,} genuine / {document['impostor_pairs']:,} impostor pairs"
    )


def read_document(path: Path) -> dict[str, Any] | None:
    """The calibration document at ``path`` (None when there is none). A file that cannot be
    read as one is an IntegrityError naming it: thresholds must not silently fall back."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"cannot read the calibration file {path}: {exc}") from exc
    try:
        document: dict[str, Any] = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("it is not a JSON object")
        if document.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        points = [
            (float(p["distance"]), float(p["fmr"]), _optional(p.get("fnmr")))
            for p in document["points"]
        ]
        for key in ("dataset", "date", "genuine_pairs", "impostor_pairs", "model"):
            if key not in document:
                raise ValueError(f"'{key}' is missing")
        if len(points) < MIN_POINTS:
            raise ValueError(f"it holds {len(points)} points, fewer than {MIN_POINTS}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(
            f"the calibration file {path} is not valid ({exc}); remove it with "
            "'probity calibrate --reset --model KEY' or calibrate again"
        ) from exc
    document["_points"] = points
    return document


def deployment_table(shipped: FmrTable, document: dict[str, Any]) -> FmrTable:
    """``shipped`` (its name and distance scale) with the deployment's measured points."""
    return FmrTable(
        model_name=shipped.model_name,
        points=tuple(OperatingPoint(d, f, n) for d, f, n in document["_points"]),
        source=source_text(document),
        distance=shipped.distance,
        origin="deployment",
    )


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
