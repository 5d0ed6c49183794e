"""A search over galleries of two models (real dlib and SFace on the committed photos).

The probe's faces are detected once, by the engine of the first gallery's model, and the same
faces are described by the other model's engine; each gallery is searched with its own
model's descriptor and re-scored on its own model's scale, and the candidates of the two
models are ranked together by the 1:1 false-match rate of their distance on their own table.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from probity.config import Settings
from probity.engine.registry import EngineSet
from probity.engine.thresholds import DLIB_TABLE, distance_at_fmr
from probity.services.clock import ManualClock
from probity.services.container import Services, build_services, initialise
from tests.services.conftest import ACTOR, PROVENANCE

DATA = Path(__file__).resolve().parents[1] / "data"
DLIB = "dlib-resnet-v1"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    clock = ManualClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    settings = Settings(home=tmp_path_factory.mktemp("models") / "home")
    initialise(settings, actor=ACTOR, clock=clock)
    svc = build_services(settings, clock=clock)
    svc.galleries.create(
        actor=ACTOR, name="old", inclusion_policy="custody images", retention_days=365,
        model=DLIB,
    )  # fmt: skip
    svc.galleries.create(
        actor=ACTOR, name="new", inclusion_policy="custody images", retention_days=365
    )
    for gallery, subject, photo in (
        ("old", "OB-1", "obama.jpg"),
        ("new", "BI-1", "biden.jpg"),
        ("new", "CO-1", "astronaut.png"),
    ):
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject=subject,
            image=(DATA / photo).read_bytes(), provenance=PROVENANCE,
        )  # fmt: skip
    svc.cases.open(
        actor=ACTOR, reference="C-1", offence="robbery",
        justification="suspect on camera 4", authorisation="W-1",
    )  # fmt: skip
    yield svc
    svc.close()


def _count_calls(engines: EngineSet, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls: dict[str, int] = {}
    for engine in engines:
        for method in ("analyse", "describe"):
            original = getattr(engine, method)

            def counted(
                *args: Any, _o: Any = original, _n: str = method, _e: Any = engine, **kwargs: Any
            ) -> Any:
                key = f"{_e.model.name}.{_n}"
                calls[key] = calls.get(key, 0) + 1
                return _o(*args, **kwargs)

            monkeypatch.setattr(engine, method, counted)
    return calls


def test_galleries_of_two_models_are_searched_with_one_detection(
    two_models: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = two_models
    calls = _count_calls(svc.engines, monkeypatch)
    result = svc.search.search(
        actor=ACTOR, case_reference="C-1", probe=(DATA / "obama2.jpg").read_bytes(),
        galleries=["old", "new"], threshold_off=True,
    )  # fmt: skip
    # Detected once, by the first gallery's model (dlib's analyse, which describes its own
    # detections), and described once by SFace from those detections: no second detection.
    assert calls == {
        "dlib-resnet-v1.analyse": 1,
        "dlib-resnet-v1.describe": 1,
        "sface-int8.describe": 1,
    }
    assert result.model_key.split(", ")[0].startswith(DLIB)
    assert "sface-int8" in result.model_key
    (face,) = result.faces
    ranked = [(c.subject_reference, c.gallery_name) for c in face.candidates]
    assert ranked[0] == ("OB-1", "old")  # the mate, found in the dlib gallery
    assert {r for r, _ in ranked} == {"OB-1", "BI-1", "CO-1"}
    # Each candidate's score is on its own model's scale: dlib 1 - d, SFace the cosine.
    for c in face.candidates:
        if c.gallery_name == "old":
            assert c.score == pytest.approx(max(0.0, 1 - c.distance), abs=1e-3)
        else:
            assert c.score == pytest.approx(max(0.0, 1 - c.distance**2 / 2), abs=1e-3)


def test_each_model_marks_at_its_own_distance(two_models: Services) -> None:
    svc = two_models
    # One target FPIR over every template searched (both galleries): the same per-comparison
    # FMR, read off each model's own table, and each model's distance is shown.
    result = svc.search.search(
        actor=ACTOR, case_reference="C-1", probe=(DATA / "biden.jpg").read_bytes(),
        galleries=["new", "old"], target_fpir=0.01,
    )  # fmt: skip
    t = result.threshold
    n = t.gallery_templates or 0
    assert n >= 2 and t.target_fmr == pytest.approx(0.01 / n)
    by_model = dict(t.by_model)
    assert len(by_model) == 2
    sface = next(d for k, d in by_model.items() if k.startswith("sface-int8"))
    dlib = next(d for k, d in by_model.items() if k.startswith(DLIB))
    assert sface == distance_at_fmr(
        svc.engines.table(svc.engines.resolve("sface-int8").model), 0.01 / n
    )
    assert dlib == distance_at_fmr(DLIB_TABLE, 0.01 / n)
    assert 1.128 < (sface or 0) < 1.188 and 0.542 < (dlib or 0) < 0.615
    assert t.max_distance == sface  # the first gallery's model
    (face,) = result.faces
    assert face.candidates[0].subject_reference == "BI-1"
    assert face.candidates[0].within_threshold is True
    assert face.candidates[0].distance == pytest.approx(0.0, abs=1e-4)  # same photo, same path
    # Obama is listed (every row is a lead) but not marked.
    assert all(
        c.within_threshold is False for c in face.candidates if c.subject_reference == "OB-1"
    )
