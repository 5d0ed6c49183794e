"""Enrolment and search give the same template for the same photo on the default engine
(YuNet + SFace), through the real services: enrol a photo, search the same photo, distance 0.

On the dlib path they differed (median 0.038, worst 0.88) because enrolment rescaled the
photo for HOG's pixel budget; the ONNX engine runs one path for both."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from probity.config import Settings
from probity.services.container import build_services, initialise

ACTOR = "curator"
PROVENANCE = {
    "source": "portrait archive",
    "lawful_basis": "public_task",
    "collected_at": (date.today() - timedelta(days=30)).isoformat(),  # tests must not age
    "jurisdiction": "US",
    "collected_by": "curator",
}


@pytest.mark.parametrize("photo", ["obama.jpg", "biden.jpg", "obama3.jpg"])
def test_searching_an_enrolled_photo_finds_it_at_distance_zero(
    tmp_path: Path, data_dir: Path, photo: str
) -> None:
    settings = Settings(home=tmp_path / "home")
    initialise(settings, actor=ACTOR)
    svc = build_services(settings)
    try:
        gallery = svc.galleries.create(
            actor=ACTOR, name="g", inclusion_policy="portraits", retention_days=3650
        )
        assert gallery.model.name == "sface-int8"  # the default for new galleries
        others = [p for p in ("obama2.jpg", "32bit.png") if p != photo]
        for number, name in enumerate([photo, *others]):
            svc.enrolment.enrol(
                actor=ACTOR,
                gallery="g",
                subject=f"S-{number}",
                image=(data_dir / name).read_bytes(),
                provenance=PROVENANCE,
            )
        svc.cases.open(
            actor=ACTOR,
            reference="C-1",
            offence="fraud",
            justification="same photo",
            authorisation="A-1",
        )
        result = svc.search.search(
            actor=ACTOR,
            case_reference="C-1",
            probe=(data_dir / photo).read_bytes(),
            threshold_off=True,
        )
    finally:
        svc.close()
    (face,) = result.faces
    top = face.candidates[0]
    assert top.subject_reference == "S-0"
    assert top.distance == 0.0
    assert face.candidates[1].distance > 0.3
