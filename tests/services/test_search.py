"""Search, cases and authorisation through the services, with the fake engine."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from probity.domain.case import AuthorisationStatus
from probity.domain.search import FaceOutcome, SearchOutcome
from probity.errors import (
    CaseNotFound,
    CaseNotSearchable,
    InvalidInput,
    UnsupportedOperatingPoint,
)
from probity.services.clock import ManualClock
from probity.services.container import Services
from tests.fakes import BAD_QUALITY, FakeEngine, make_image, near, unit
from tests.services.conftest import ACTOR, PROVENANCE


@pytest.fixture
def enrolled(svc: Services, gallery: str, fake_engine: FakeEngine) -> dict[str, np.ndarray]:
    """Five subjects; S-0 has two enrolments."""
    people = {f"S-{i}": unit(500 + i) for i in range(5)}
    for i, (ref, vector) in enumerate(people.items()):
        image = fake_engine.register(make_image(600 + i), vector)
        svc.enrolment.enrol(
            actor=ACTOR, gallery=gallery, subject=ref, image=image, provenance=PROVENANCE
        )
    second = fake_engine.register(make_image(700), near(people["S-0"], 0.3, 1))
    svc.enrolment.enrol(
        actor=ACTOR, gallery=gallery, subject="S-0", image=second, provenance=PROVENANCE
    )
    svc.cases.open(
        actor=ACTOR,
        reference="C-1",
        offence="robbery",
        justification="suspect seen on a still from the scene",
        authorisation="AUTH-1",
    )
    return people


def test_rank_one_is_the_nearest_subject_once(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine
) -> None:
    probe = fake_engine.register(make_image(800), near(enrolled["S-0"], 0.25, 2))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, threshold_off=True)
    face = result.faces[0]
    assert face.outcome is FaceOutcome.CANDIDATES
    refs = [c.subject_reference for c in face.candidates]
    assert refs[0] == "S-0"
    assert len(refs) == len(set(refs)) == 5  # one row per subject
    distances = [c.distance for c in face.candidates]
    assert distances == sorted(distances)
    assert face.candidates[0].distance <= 0.3
    assert face.candidates[0].score == pytest.approx(1 - face.candidates[0].distance, abs=1e-3)
    assert face.candidates[0].provenance.source == PROVENANCE["source"]


def test_threshold_gives_explicit_no_candidate(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine
) -> None:
    stranger = fake_engine.register(make_image(801), unit(9999))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=stranger)
    assert result.outcome is SearchOutcome.NO_CANDIDATE_ABOVE_THRESHOLD
    assert result.faces[0].candidates == ()
    assert result.threshold.max_distance == 0.6
    strict = svc.search.search(actor=ACTOR, case_reference="C-1", probe=stranger, target_fmr=0.0003)
    assert strict.threshold.max_distance == 0.55
    # A rate that is not a measured row is refused (422), never moved to a neighbour.
    for unsupported in (1e-6, 0.01):
        with pytest.raises(UnsupportedOperatingPoint, match="not a measured operating point"):
            svc.search.search(
                actor=ACTOR, case_reference="C-1", probe=stranger, target_fmr=unsupported
            )


def test_every_face_is_searched_and_face_can_be_picked(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine
) -> None:
    probe = fake_engine.register(
        make_image(802), near(enrolled["S-1"], 0.2, 3), near(enrolled["S-2"], 0.2, 4)
    )
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, top_k=1)
    assert [f.candidates[0].subject_reference for f in result.faces] == ["S-1", "S-2"]
    only = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, face=2)
    assert [f.index for f in only.faces] == [2]
    with pytest.raises(InvalidInput, match="face 3 does not exist"):
        svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, face=3)


def test_no_face_and_poor_probe_face(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine
) -> None:
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=make_image(803))
    assert result.outcome is SearchOutcome.NO_FACE_FOUND
    poor = fake_engine.register(make_image(804), enrolled["S-1"], quality=BAD_QUALITY)
    refused = svc.search.search(actor=ACTOR, case_reference="C-1", probe=poor)
    assert refused.faces[0].outcome is FaceOutcome.REFUSED_QUALITY
    assert refused.faces[0].refusal_reasons


def test_search_needs_a_known_case(svc: Services, enrolled: dict[str, np.ndarray]) -> None:
    with pytest.raises(CaseNotFound):
        svc.search.search(actor=ACTOR, case_reference="NOPE", probe=make_image(1))


def test_pending_authorisation_locks_after_48_hours(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine, clock: ManualClock
) -> None:
    probe = fake_engine.register(make_image(805), enrolled["S-3"])
    svc.cases.open(
        actor=ACTOR,
        reference="C-P",
        offence="robbery",
        justification="urgent: suspect at large, warrant requested",
        authorisation=None,
        pending=True,
    )
    clock.advance(timedelta(hours=47))
    assert svc.search.search(actor=ACTOR, case_reference="C-P", probe=probe).faces
    clock.advance(timedelta(hours=2))
    with pytest.raises(CaseNotSearchable, match="48 h"):
        svc.search.search(actor=ACTOR, case_reference="C-P", probe=probe)
    svc.cases.set_authorisation(
        actor=ACTOR, reference="C-P", status=AuthorisationStatus.GRANTED, authorisation="A-9"
    )
    assert svc.search.search(actor=ACTOR, case_reference="C-P", probe=probe).faces
    svc.cases.set_authorisation(actor=ACTOR, reference="C-P", status=AuthorisationStatus.REJECTED)
    with pytest.raises(CaseNotSearchable, match="rejected"):
        svc.search.search(actor=ACTOR, case_reference="C-P", probe=probe)
    denied = [e for e in svc.audit.events(actor=ACTOR, action="search.denied").events]
    assert len(denied) == 2


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"offence": "jaywalking"}, "not a configured category"),
        ({"justification": "why"}, "justification"),
        ({"authorisation": None}, "either an authorisation id or 'pending'"),
        ({"pending": True}, "either an authorisation id or 'pending'"),
    ],
)
def test_case_open_validation(svc: Services, kwargs: dict[str, object], fragment: str) -> None:
    base: dict[str, object] = {
        "actor": ACTOR,
        "reference": "C-X",
        "offence": "robbery",
        "justification": "suspect seen on camera",
        "authorisation": "A-1",
    }
    with pytest.raises(InvalidInput, match=fragment):
        svc.cases.open(**{**base, **kwargs})  # type: ignore[arg-type]
