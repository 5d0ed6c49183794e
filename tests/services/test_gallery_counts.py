"""Gallery counts kept by database triggers (migration 0017): a search's "compared with N
people" and the gallery list read one row instead of a COUNT that grows with the gallery.
The counts must equal a COUNT after every kind of change, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from probity.services.container import Services
from probity.storage.repositories import Enrolments, Subjects, Templates
from tests.fakes import FakeEngine, make_image, unit
from tests.pg import postgres_url  # noqa: F401 - the fixture, used by the param below
from tests.services.conftest import ACTOR, PROVENANCE

GALLERY = "custody"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, make_services: Callable[..., Services]) -> Services:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    svc = make_services(database_url=url)
    for name in (GALLERY, "other"):
        svc.galleries.create(
            actor=ACTOR, name=name, inclusion_policy="charged persons", retention_days=365
        )
    return svc


def enrol(
    svc: Services, engine: FakeEngine, seed: int, subject: str, gallery: str = GALLERY
) -> None:
    outcome = svc.enrolment.enrol(
        actor=ACTOR,
        gallery=gallery,
        subject=subject,
        image=engine.register(make_image(seed), unit(seed)),
        provenance=PROVENANCE,
    )
    assert outcome.enrolment is not None


def counted(svc: Services, gallery: str) -> tuple[int, int, int, int]:
    """(subjects by trigger, by COUNT, enrolments by trigger, by COUNT)."""
    gallery_id = svc.galleries.get(gallery).id
    with svc.db.read() as s:
        subjects = s.execute(
            text("SELECT COUNT(*) FROM subjects WHERE gallery_id = :g"), {"g": gallery_id}
        ).scalar_one()
        enrolments = s.execute(
            text("SELECT COUNT(*) FROM enrolments WHERE gallery_id = :g"), {"g": gallery_id}
        ).scalar_one()
        return (
            Subjects(s).count(gallery_id),
            int(subjects),
            Enrolments(s).count(gallery_id),
            int(enrolments),
        )


def test_counts_follow_enrolment_removal_and_erasure(
    home: Services, fake_engine: FakeEngine
) -> None:
    assert counted(home, GALLERY) == (0, 0, 0, 0)
    enrol(home, fake_engine, 1, "S1")
    enrol(home, fake_engine, 2, "S1")  # a second photo of the same person
    enrol(home, fake_engine, 3, "S2")
    enrol(home, fake_engine, 4, "S3", gallery="other")
    assert counted(home, GALLERY) == (2, 2, 3, 3)
    assert counted(home, "other") == (1, 1, 1, 1)
    home.subjects.remove(actor=ACTOR, gallery=GALLERY, reference="S1", reason="court order")
    assert counted(home, GALLERY) == (1, 1, 1, 1)
    assert counted(home, "other") == (1, 1, 1, 1)
    # Templates per gallery and model (what ``index status`` shows), likewise.
    gallery_id = home.galleries.get(GALLERY).id
    model_key = home.galleries.get(GALLERY).model.key
    with home.db.read() as s:
        direct = s.execute(
            text("SELECT COUNT(*) FROM templates WHERE gallery_id = :g AND model_key = :m"),
            {"g": gallery_id, "m": model_key},
        ).scalar_one()
        assert Templates(s).count(gallery_id, model_key) == int(direct) == 1
    assert home.maintenance.status()[0].templates == 1
    # The gallery list reads the same counts.
    listed = {g.name: (s, e) for g, s, e in home.galleries.list()}
    assert listed[GALLERY] == (1, 1) and listed["other"] == (1, 1)


def test_a_rolled_back_enrolment_leaves_the_count(home: Services, fake_engine: FakeEngine) -> None:
    enrol(home, fake_engine, 1, "S1")
    gallery_id = home.galleries.get(GALLERY).id
    with pytest.raises(RuntimeError), home.db.transaction() as s:
        s.execute(
            text(
                "INSERT INTO subjects (id, gallery_id, reference, created_at) "
                "VALUES ('x1', :g, 'ghost', CURRENT_TIMESTAMP)"
            ),
            {"g": gallery_id},
        )
        assert Subjects(s).count(gallery_id) == 2  # the writer sees its own +1
        raise RuntimeError("crash before commit")
    assert counted(home, GALLERY)[:2] == (1, 1)
