"""``EngineSet.table``: the deployment's own FMR table when ``<home>/calibration`` has one for
the model, the shipped table otherwise; a damaged file is refused, never skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probity.config import EngineSettings
from probity.engine.calibration_file import FORMAT, calibration_path
from probity.engine.registry import build_engine_set
from probity.errors import IntegrityError

SFACE = "sface-int8@opencv_zoo-2021dec-int8bq"


def document(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "format": FORMAT,
        "model": SFACE,
        "dataset": "custody-2026",
        "date": "2026-12-02",
        "genuine_pairs": 4200,
        "impostor_pairs": 1_500_000,
        "points": [
            {"fmr": 1e-2, "distance": 1.2, "fnmr": 0.01},
            {"fmr": 1e-3, "distance": 1.14, "fnmr": 0.02},
        ],
    }
    return base | changes


def test_deployment_table_is_preferred_and_follows_the_file(tmp_path: Path) -> None:
    engines = build_engine_set(EngineSettings(), calibration_dir=tmp_path)
    model = engines.get(SFACE).model
    shipped = engines.table(model)
    assert shipped.origin == "shipped" and "sface-int8.toml" in shipped.source
    path = calibration_path(tmp_path, SFACE)
    path.write_text(json.dumps(document()))
    table = engines.table(model)
    assert table.origin == "deployment" and table.distance == shipped.distance
    assert table.source == (
        "deployment calibration custody-2026, 2026-12-02, 4,200 genuine / 1,500,000 impostor pairs"
    )
    assert [(p.fmr, p.distance, p.fnmr) for p in table.points] == [
        (1e-2, 1.2, 0.01),
        (1e-3, 1.14, 0.02),
    ]
    dlib = next(e.model for e in engines if e.model.key != SFACE)
    assert engines.table(dlib).origin == "shipped"  # only the calibrated model changes
    path.unlink()
    assert engines.table(model).origin == "shipped"  # a reset is seen without a restart


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps(document(format="other")),
        json.dumps(document(points=[{"fmr": 1e-2, "distance": 1.2}])),
        json.dumps({k: v for k, v in document().items() if k != "dataset"}),
    ],
)
def test_a_damaged_calibration_file_is_refused(tmp_path: Path, text: str) -> None:
    engines = build_engine_set(EngineSettings(), calibration_dir=tmp_path)
    calibration_path(tmp_path, SFACE).write_text(text)
    with pytest.raises(IntegrityError, match="calibration file"):
        engines.table(engines.get(SFACE).model)
