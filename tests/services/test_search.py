"""Search, cases and authorisation through the services, with the fake engine."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from probity.domain.case import AuthorisationStatus
from probity.domain.gallery import Enrolment, Subject
from probity.domain.search import FaceOutcome, SearchOutcome, ThresholdMode, threshold_wording
from probity.engine.thresholds import DLIB_TABLE, distance_at_fmr, fmr_at
from probity.errors import (
    CaseNotFound,
    CaseNotSearchable,
    InvalidInput,
    SubjectNotFound,
    UnsupportedOperatingPoint,
)
from probity.services.clock import ManualClock
from probity.services.container import Services
from probity.services.indexes import IndexSlot
from probity.storage.repositories import Enrolments, Subjects
from probity.storage.tables import SubjectRow
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


def test_investigation_mode_is_the_default_and_marks_nothing(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine
) -> None:
    stranger = fake_engine.register(make_image(801), unit(9999))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=stranger)
    t = result.threshold
    assert t.mode is ThresholdMode.INVESTIGATION and t.max_distance is None
    assert (t.gallery_subjects, t.gallery_templates) == (5, 6)
    face = result.faces[0]
    assert len(face.candidates) == 5  # the ranked list, no row dropped
    assert all(c.within_threshold is None for c in face.candidates)
    # A stranger's rows are all explained by chance at this size: each row's expected
    # strangers is templates x the table's 1:1 FMR at its distance, recomputed here.
    for c in face.candidates:
        assert c.expected_strangers == pytest.approx(6 * fmr_at(DLIB_TABLE, c.distance), rel=1e-3)
    assert face.expected_false_candidates == pytest.approx(
        sum(min(1.0, c.expected_strangers or 0) for c in face.candidates), abs=0.01
    )
    assert "Investigation mode" in threshold_wording(t) and "5 people" in threshold_wording(t)


def _synthetic_templates(svc: Services, gallery: str, count: int, away: np.ndarray) -> None:
    """``count`` more subjects with one template each: subject rows written straight to the
    table and vectors added straight to the gallery's index (the search's N is the index's
    vector count, its people the subject rows); 10,000 enrolments through the service would
    take minutes. The vectors all point at ``-away`` (the far side of the sphere from the
    probe), so they rank below every real template, and having no template row they are
    never candidates."""
    g = svc.galleries.get(gallery)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with svc.db.transaction() as session:
        session.add_all(
            SubjectRow(id=f"syn{i:08d}", gallery_id=g.id, reference=f"SYN-{i}", created_at=now)
            for i in range(count)
        )
    vectors = np.repeat(-away[None, :].astype(np.float32), count, axis=0)
    svc.indexes.add(IndexSlot.of(g), list(range(10_000_000, 10_000_000 + count)), vectors)


def test_the_same_fpir_needs_a_stricter_distance_in_a_larger_gallery(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine, gallery: str
) -> None:
    probe = fake_engine.register(make_image(806), near(enrolled["S-1"], 0.3, 5))
    small = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, target_fpir=0.01)
    # 6 templates: FMR 0.01 / 6 per comparison, read off the table between 1e-3 and 1e-2.
    assert small.threshold.mode is ThresholdMode.FPIR
    assert small.threshold.target_fmr == pytest.approx(0.01 / 6)
    assert small.threshold.max_distance == distance_at_fmr(DLIB_TABLE, 0.01 / 6)
    assert 0.542 < (small.threshold.max_distance or 0) < 0.615
    _synthetic_templates(svc, gallery, 10_000 - 6, enrolled["S-1"])
    large = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, target_fpir=0.01)
    assert large.threshold.gallery_templates == 10_000
    assert large.threshold.target_fmr == pytest.approx(1e-6)
    assert large.threshold.max_distance == 0.356  # the table's 1e-6 row
    top = large.faces[0].candidates[0]
    assert top.subject_reference == "S-1" and top.within_threshold is True
    assert [c.within_threshold for c in large.faces[0].candidates[1:]] == [False] * 4
    # Both thresholds are shown in the wording every page, report and CLI prints.
    assert "10,000 templates" in threshold_wording(large.threshold)
    assert f"{small.threshold.max_distance}" in threshold_wording(small.threshold)
    # A target the table cannot reach (1e-7 per comparison) marks no row and says why.
    strict = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, target_fpir=0.001)
    assert strict.threshold.max_distance is None
    assert "measured down to 1e-06 only" in (strict.threshold.unreachable or "")
    assert all(c.within_threshold is None for c in strict.faces[0].candidates)
    assert strict.faces[0].outcome is FaceOutcome.NO_CANDIDATE_ABOVE_THRESHOLD
    stored = svc.results.get(strict.id, actor=ACTOR)
    assert stored.threshold.unreachable == strict.threshold.unreachable
    assert stored.threshold.gallery_templates == 10_000
    event = svc.audit.events(actor=ACTOR, action="search.run").events[-1]
    assert event.details["mode"] == "fpir" and event.details["gallery_templates"] == 10_000


def test_a_subject_with_three_enrolments_ranks_by_its_fused_score(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine, gallery: str
) -> None:
    base = unit(4242)
    made = []
    for n, distance in enumerate((0.35, 0.42, 0.5)):
        image = fake_engine.register(make_image(900 + n), near(base, distance, 40 + n))
        made.append(
            svc.enrolment.enrol(
                actor=ACTOR, gallery=gallery, subject="TRIPLE", image=image, provenance=PROVENANCE
            )
        )
    probe = fake_engine.register(make_image(910), base)
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, top_k=3)
    top = result.faces[0].candidates[0]
    assert top.subject_reference == "TRIPLE" and top.fused == 3
    # The fused score is the best template's distance (engine/fusion.py: best); the row
    # names the enrolment that came closest.
    closest = made[0].enrolment
    assert closest is not None and top.enrolment_id == closest.id
    assert top.distance == pytest.approx(0.35, abs=1e-3)
    assert {c.fused for c in result.faces[0].candidates[1:]} <= {1, 2}
    again = svc.results.get(result.id, actor=ACTOR).faces[0].candidates[0]
    assert (again.fused, again.enrolment_id) == (3, top.enrolment_id)


def test_verify_the_right_and_a_wrong_subject_within_a_case(
    svc: Services, enrolled: dict[str, np.ndarray], fake_engine: FakeEngine, gallery: str
) -> None:
    probe = fake_engine.register(make_image(920), near(enrolled["S-2"], 0.3, 7))
    right = svc.search.verify(
        actor=ACTOR, case_reference="C-1", probe=probe, gallery=gallery, subject_reference="S-2"
    )
    assert right.within_threshold is True and right.fused == 1
    assert right.threshold.mode is ThresholdMode.FMR
    assert right.threshold.max_distance == 0.542  # the table's 1e-3 row, the default
    wrong = svc.search.verify(
        actor=ACTOR, case_reference="C-1", probe=probe, gallery=gallery, subject_reference="S-3"
    )
    assert wrong.within_threshold is False and wrong.distance > 0.542
    fused = svc.search.verify(
        actor=ACTOR, case_reference="C-1", probe=probe, gallery=gallery, subject_reference="S-0"
    )
    assert fused.fused == 2
    events = svc.audit.events(actor=ACTOR, action="search.verify").events
    assert [e.details["within_threshold"] for e in events] == [True, False, False]
    assert events[0].subject_ids == (right.subject_id,)
    with pytest.raises(CaseNotFound):
        svc.search.verify(
            actor=ACTOR,
            case_reference="NONE",
            probe=probe,
            gallery=gallery,
            subject_reference="S-2",
        )
    with pytest.raises(SubjectNotFound, match="no subject 'S-99'"):
        svc.search.verify(
            actor=ACTOR,
            case_reference="C-1",
            probe=probe,
            gallery=gallery,
            subject_reference="S-99",
        )
    with pytest.raises(UnsupportedOperatingPoint, match="outside what"):
        svc.search.verify(
            actor=ACTOR,
            case_reference="C-1",
            probe=probe,
            gallery=gallery,
            subject_reference="S-2",
            target_fmr=1e-8,
        )
    svc.cases.set_authorisation(actor=ACTOR, reference="C-1", status=AuthorisationStatus.REJECTED)
    with pytest.raises(CaseNotSearchable, match="rejected"):
        svc.search.verify(
            actor=ACTOR, case_reference="C-1", probe=probe, gallery=gallery, subject_reference="S-2"
        )


def test_search_reads_the_names_of_the_shown_candidates_only(
    svc: Services,
    enrolled: dict[str, np.ndarray],
    fake_engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The enrolment and subject rows are read for the ``top_k`` rows shown, not for every
    candidate ranked (at 10M faces each row is a random read from disk). Every candidate is
    still re-scored: the two shown are the two nearest of all five."""
    asked: dict[str, list[object]] = {"enrolments": [], "subjects": []}
    by_template_ids, get_many = Enrolments.by_template_ids, Subjects.get_many

    def enrolments_spy(self: Enrolments, ids: Iterable[int]) -> dict[int, Enrolment]:
        wanted = list(ids)
        asked["enrolments"].extend(wanted)
        return by_template_ids(self, wanted)

    def subjects_spy(self: Subjects, ids: Iterable[str]) -> dict[str, Subject]:
        wanted = list(ids)
        asked["subjects"].extend(wanted)
        return get_many(self, wanted)

    monkeypatch.setattr(Enrolments, "by_template_ids", enrolments_spy)
    monkeypatch.setattr(Subjects, "get_many", subjects_spy)
    probe = fake_engine.register(make_image(805), near(enrolled["S-3"], 0.2, 5))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, top_k=2)
    shown = result.faces[0].candidates
    nearest = sorted(enrolled, key=lambda r: float(np.linalg.norm(enrolled[r] - enrolled["S-3"])))
    assert [c.subject_reference for c in shown] == nearest[:2]
    assert len(asked["enrolments"]) == 2 and len(set(asked["subjects"])) == 2


def test_a_candidate_erased_between_the_reads_is_passed_over(
    svc: Services,
    enrolled: dict[str, np.ndarray],
    fake_engine: FakeEngine,
    gallery: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The vectors and the names are read in two transactions. A subject erased in
    between is not listed (its rows are gone), and the next one ranked takes its place."""
    suppression = svc.search.suppression
    assert suppression is not None
    withhold = suppression.withhold

    def erase_then_withhold(*args: Any, **kwargs: Any) -> Any:
        kept = withhold(*args, **kwargs)
        svc.erasure.erase(actor=ACTOR, gallery=gallery, reference="S-3", reason="court order")
        return kept

    monkeypatch.setattr(suppression, "withhold", erase_then_withhold)
    probe = fake_engine.register(make_image(806), near(enrolled["S-3"], 0.2, 6))
    result = svc.search.search(actor=ACTOR, case_reference="C-1", probe=probe, top_k=2)
    refs = [c.subject_reference for c in result.faces[0].candidates]
    assert "S-3" not in refs and len(refs) == 2


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


def test_the_services_run_numpy_products_on_one_thread(svc: Services) -> None:
    """numpy's OpenBLAS threads spin after each product and slowed the FAISS query that
    follows in a search from 3.9 to 27 ms at 3.94M (services/container.py). After
    ``build_services`` (the ``svc`` fixture), numpy's BLAS runs on one thread."""
    from threadpoolctl import threadpool_info

    from probity.services.container import NUMPY_BLAS

    numpy_blas = [i for i in threadpool_info() if i["prefix"] == NUMPY_BLAS]
    assert numpy_blas, threadpool_info()
    assert all(i["num_threads"] == 1 for i in numpy_blas)
